using System.Text.Json;
using QedFuse.Cli.Mount;

namespace QedFuse.Cli.Live;

/// <summary>What the daemon does for each control verb: report statistics, set limits, reload metadata.</summary>
internal sealed class ControlCommands(ImageFileSystem fs, MountSettings settings)
{
    public void Run(string verb, JsonElement request, Utf8JsonWriter w)
    {
        switch (verb)
        {
            case "stats":
                StatsReport.Write(w, fs.Images);
                break;
            case "throttle":
                Throttle(request, w);
                break;
            case "refresh":
                Refresh(w);
                break;
            default:
                throw new UsageException($"unknown control verb '{verb}' (known: stats, throttle, refresh)");
        }
    }

    private void Throttle(JsonElement request, Utf8JsonWriter w)
    {
        IReadOnlyList<MountedImage> targets = fs.Images;
        if (request.TryGetProperty("file", out var file) && file.ValueKind == JsonValueKind.String)
        {
            string name = file.GetString()!;
            targets = fs.Images.Where(m => m.FileName == name).ToList();
            if (targets.Count == 0)
            {
                throw new UsageException($"{settings.MountPoint} has no file '{name}' (it has: {string.Join(", ", fs.Images.Select(m => m.FileName))})");
            }
        }

        ThrottleLimits changes = request.TryGetProperty("limits", out var limits) ? StatsReport.ReadLimits(limits) : new ThrottleLimits();
        if (!changes.IsEmpty)
        {
            foreach (MountedImage m in targets)
            {
                m.Throttle.Configure(changes);
                Log.Info($"{m.FileName}: limits now {string.Join(",", m.Throttle.Limits.ToOptions())}");
            }
        }

        w.WriteStartObject();
        w.WriteStartArray("files");
        foreach (MountedImage m in targets)
        {
            w.WriteStartObject();
            w.WriteString("name", m.FileName);
            StatsReport.WriteLimits(w, m.Throttle.Limits);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private void Refresh(Utf8JsonWriter w)
    {
        if (!settings.ReadOnly)
        {
            throw new UsageException($"{settings.MountPoint} is mounted read-write: it owns its images, so nothing else can have changed them (refresh is for read-only mounts, typically -o ro,force_share)");
        }

        w.WriteStartObject();
        w.WriteStartArray("files");
        foreach (MountedImage m in fs.Images)
        {
            long before = m.Image.VirtualSize;
            m.Revalidator!.Reload();
            // Attributes (size) and every cached page of the file: the next read asks us again.
            fs.Session?.InvalidateCache(m.Ino, 0, 0);
            w.WriteStartObject();
            w.WriteString("name", m.FileName);
            w.WriteNumber("virtual_size", m.Image.VirtualSize);
            w.WriteNumber("previous_virtual_size", before);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }
}
