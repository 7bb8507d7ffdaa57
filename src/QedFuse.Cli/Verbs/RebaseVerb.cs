using CommandLine;
using CommandLine.Text;
using QedFuse.Block;
using QedFuse.Block.Tools;
using QedFuse.Cli.Output;

namespace QedFuse.Cli.Verbs;

[Verb("rebase", HelpText = "Change the backing file of an image (like qemu-img rebase). Safe mode (the default) keeps what the image shows; -u only rewrites the name.")]
internal sealed class RebaseOptions : LongVerbOptions
{
    [Option('u', "unsafe", HelpText = "Only rewrite the backing file name and format, without looking at any content (for a backing file that was moved or renamed).")]
    public bool Unsafe { get; set; }

    [Option('f', "format", HelpText = "Format of IMAGE; probed when omitted.")]
    public string? Format { get; set; }

    [Option('b', "backing", Required = true, HelpText = "The new backing file; \"\" for none (IMAGE then stands alone). A relative name is relative to IMAGE's directory.")]
    public string Backing { get; set; } = "";

    [Option('F', "backing-format", HelpText = "Format of the new backing file; probed when omitted.")]
    public string? BackingFormat { get; set; }

    [Option('r', "rate-limit", HelpText = "Safe mode: compare at most this many bytes per second (K, M, G suffixes), to spare a busy disk.")]
    public string? RateLimit { get; set; }

    [Value(0, MetaName = "IMAGE", Required = true)]
    public string Image { get; set; } = "";

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("Move an overlay onto another base, keeping its content", new RebaseOptions { Backing = "base-v2.raw", BackingFormat = "raw", Image = "vm.qed" }),
        new("The base file was renamed: just record the new name", new RebaseOptions { Unsafe = true, Backing = "base.raw", BackingFormat = "raw", Image = "vm.qed" }),
        new("Make an overlay independent of its backing file", new RebaseOptions { Backing = "", Image = "vm.qed" }),
    ];
}

internal static class RebaseVerb
{
    public static int Run(RebaseOptions o)
    {
        string? name = o.Backing.Length == 0 ? null : o.Backing;
        if (name is null && o.BackingFormat is not null)
        {
            throw new UsageException("-F names the format of the new backing file, but -b \"\" removes it");
        }

        string? newPath = name is null ? null : ImageOpener.ResolveBackingPath(o.Image, name);
        if (newPath is not null && File.Exists(o.Image) && File.Exists(newPath) && ImageOpener.RealPath(newPath) == ImageOpener.RealPath(o.Image))
        {
            throw new UsageException($"{o.Image}: cannot be its own backing file");
        }

        RateLimit rate = LongRun.Rate(o.RateLimit);
        using var run = new LongRun(o.ShowProgress);
        if (o.Unsafe)
        {
            using IBlockImage image = ImageOpener.Open(o.Image, new ImageOpenOptions { Format = o.Format, SkipBacking = true });
            image.SetBackingFile(name, o.BackingFormat ?? ProbeFormat(newPath));
        }
        else
        {
            using IBlockImage image = OpenWithOldChain(o);
            using IBlockImage? newBacking = newPath is null ? null
                : ImageOpener.Open(newPath, new ImageOpenOptions { ReadOnly = true, Format = o.BackingFormat });
            Rebaser.CopyDifferences(image, newBacking, run.Progress, rate, run.Token);
            image.SetBackingFile(name, o.BackingFormat ?? newBacking?.FormatName);
        }

        run.Finish();
        return 0;
    }

    /// <summary>Safe mode reads the old chain; when its files are gone, say how to rename without them.</summary>
    private static IBlockImage OpenWithOldChain(RebaseOptions o)
    {
        try
        {
            return ImageOpener.Open(o.Image, new ImageOpenOptions { Format = o.Format });
        }
        catch (BadImageException e) when (e.Message.Contains(": backing file of ", StringComparison.Ordinal))
        {
            throw new UsageException($"{e.Message}; safe rebase reads the old backing file (rebase -u only rewrites the name)");
        }
    }

    /// <summary>The format of the new backing file when it can be opened now; null (probe at every open) otherwise.</summary>
    private static string? ProbeFormat(string? path)
    {
        if (path is null || !File.Exists(path))
        {
            return null;
        }

        using IBlockImage backing = ImageOpener.Open(path, new ImageOpenOptions { ReadOnly = true, ForceShare = true, SkipBacking = true });
        return backing.FormatName;
    }
}
