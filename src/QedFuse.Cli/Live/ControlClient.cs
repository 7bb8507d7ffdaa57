using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using QedFuse.Cli.Mount;

namespace QedFuse.Cli.Live;

/// <summary>
/// The verbs' end of the control channel: from the mount point to its daemon (the pid file,
/// as unmount finds it) to the daemon's socket; one request, one answer. Every way of not
/// getting there is one line naming the mount point.
/// </summary>
internal static class ControlClient
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Sends <c>{"verb": verb, ...}</c> and returns the answer's result; a refusal becomes a <see cref="UsageException"/>.</summary>
    public static JsonElement Request(string mountPointArgument, string verb, Action<Utf8JsonWriter>? fields = null)
    {
        string mountPoint = MountTable.Canonical(mountPointArgument);
        if (!MountTable.IsOurMount(mountPoint))
        {
            throw new UsageException(MountTable.ReadPid(mountPoint) is { } dead && !MountTable.IsAlive(dead)
                ? $"{mountPoint}: its qedfuse daemon (pid {dead}) has died, and the mount is gone"
                : $"{mountPoint}: not a qedfuse mount");
        }

        if (MountTable.ReadPid(mountPoint) is not { } pid)
        {
            // Records of dead daemons are swept by the next mount, so no record means dead or not ours.
            throw new UsageException($"{mountPoint}: no qedfuse daemon of this user serves it (it died, or another user mounted it); 'qedfuse unmount {mountPoint}' detaches a dead one");
        }

        if (!MountTable.IsAlive(pid))
        {
            throw new UsageException($"{mountPoint}: its daemon (pid {pid}) is not running; the mount is stale ('qedfuse unmount {mountPoint}' detaches it)");
        }

        string socketPath = MountTable.SocketFile(pid);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException e)
        {
            throw new UsageException($"{mountPoint}: its daemon (pid {pid}) does not answer on {socketPath}: {e.Message}");
        }

        var line = new MemoryStream();
        using (var w = new Utf8JsonWriter(line))
        {
            w.WriteStartObject();
            w.WriteString("verb", verb);
            fields?.Invoke(w);
            w.WriteEndObject();
        }

        line.WriteByte((byte)'\n');
        socket.ReceiveTimeout = (int)AnswerTimeout.TotalMilliseconds;
        string? answer;
        try
        {
            socket.Send(line.ToArray());
            using var reader = new StreamReader(new NetworkStream(socket, ownsSocket: false), new UTF8Encoding(false));
            answer = reader.ReadLine();
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw new UsageException($"{mountPoint}: daemon {pid} stopped answering: {e.Message}");
        }

        if (answer is null)
        {
            throw new UsageException($"{mountPoint}: daemon {pid} closed the control connection without answering");
        }

        using var doc = JsonDocument.Parse(answer);
        JsonElement root = doc.RootElement;
        if (root.GetProperty("ok").GetBoolean())
        {
            return root.GetProperty("result").Clone();
        }

        throw new UsageException(root.GetProperty("error").GetString() ?? "the daemon refused");
    }
}
