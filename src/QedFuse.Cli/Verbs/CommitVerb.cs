using CommandLine;
using CommandLine.Text;
using QedFuse.Block;
using QedFuse.Block.Tools;
using QedFuse.Cli.Output;

namespace QedFuse.Cli.Verbs;

[Verb("commit", HelpText = "Write an overlay's changes into its backing file, then empty the overlay (like qemu-img commit).")]
internal sealed class CommitOptions : LongVerbOptions
{
    [Option('f', "format", HelpText = "Format of IMAGE; probed when omitted.")]
    public string? Format { get; set; }

    [Option('b', "base", HelpText = "Commit into this image further down the backing chain (default: IMAGE's backing file). The images in between no longer show what they did; implies -d.")]
    public string? Base { get; set; }

    [Option('d', "drop", HelpText = "Leave IMAGE as it is instead of emptying it (when it is to be deleted anyway).")]
    public bool Drop { get; set; }

    [Option('r', "rate-limit", HelpText = "Copy at most this many bytes per second (K, M, G suffixes), to spare a busy disk.")]
    public string? RateLimit { get; set; }

    [Value(0, MetaName = "IMAGE", Required = true, HelpText = "The overlay whose changes to commit.")]
    public string Image { get; set; } = "";

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("Fold an overlay's changes into its base; the overlay is emptied and can be used on", new CommitOptions { Progress = true, Image = "overlay.qed" }),
        new("Fold the changes two levels down into base.raw (the overlay itself is left as it is)", new CommitOptions { Base = "base.raw", Image = "overlay.qed" }),
    ];
}

internal static class CommitVerb
{
    public static int Run(CommitOptions o)
    {
        RateLimit rate = LongRun.Rate(o.RateLimit);
        var (basePath, baseFormat) = FindBase(o);
        bool drop = o.Drop || o.Base is not null;
        using var run = new LongRun(o.ShowProgress);

        // The base opens read-write first; the chain above it then reads through that same open.
        IBlockImage baseImage = ImageOpener.Open(basePath, new ImageOpenOptions { Format = baseFormat });
        IBlockImage top;
        try
        {
            top = ImageOpener.OpenAbove(o.Image, new ImageOpenOptions { ReadOnly = drop, Format = o.Format }, baseImage);
        }
        catch
        {
            baseImage.Dispose();
            throw;
        }

        if (!ImageOpener.ChainContains(top, baseImage))
        {
            top.Dispose();
            baseImage.Dispose();
            throw new UsageException($"{basePath}: is no longer in the backing chain of {o.Image}");
        }

        using (top)
        {
            Committer.Commit(top, baseImage, new CopySettings { Progress = run.Progress, Rate = rate }, run.Token);
            if (!drop)
            {
                top.MakeEmpty();
            }
        }

        run.Finish();
        if (!o.Quiet)
        {
            Console.WriteLine("Image committed.");
        }

        return 0;
    }

    /// <summary>The base's path and format, found by walking IMAGE's chain once, read-only.</summary>
    private static (string Path, string Format) FindBase(CommitOptions o)
    {
        using IBlockImage top = ImageOpener.Open(o.Image, new ImageOpenOptions { ReadOnly = true, Format = o.Format, ForceShare = true });
        if (top.Backing is null)
        {
            throw new UsageException($"{o.Image}: has no backing file to commit into");
        }

        if (o.Base is null)
        {
            return (top.Backing.Path, top.Backing.FormatName);
        }

        var wanted = new[] { o.Base, ImageOpener.ResolveBackingPath(o.Image, o.Base) }
            .Where(File.Exists).Select(ImageOpener.RealPath).ToHashSet();
        for (IBlockImage? layer = top.Backing; layer is not null; layer = layer.Backing)
        {
            if (wanted.Contains(ImageOpener.RealPath(layer.Path)))
            {
                return (layer.Path, layer.FormatName);
            }
        }

        throw new UsageException($"{o.Base}: is not in the backing chain of {o.Image}");
    }
}
