using CommandLine;
using CommandLine.Text;
using QedFuse.Block;
using QedFuse.Block.Tools;
using QedFuse.Cli.Output;

namespace QedFuse.Cli.Verbs;

[Verb("convert", HelpText = "Copy an image into a new one, possibly of another format, leaving out what reads as zeros (like qemu-img convert).")]
internal sealed class ConvertOptions : LongVerbOptions
{
    [Option('f', "format", HelpText = "Format of SOURCE (qed or raw); probed when omitted.")]
    public string? Format { get; set; }

    [Option('O', "output-format", HelpText = "Format of TARGET: qed or raw (default raw).")]
    public string? OutputFormat { get; set; }

    [Option('o', "options", HelpText = "Options for creating TARGET, as for create (qed: cluster_size=SIZE,table_size=N).")]
    public string? FormatOptions { get; set; }

    [Option('B', "backing", HelpText = "Make TARGET an overlay on this backing file and write only what differs from it. A relative name is relative to TARGET's directory.")]
    public string? Backing { get; set; }

    [Option('F', "backing-format", HelpText = "Format of the -B backing file; probed when omitted.")]
    public string? BackingFormat { get; set; }

    [Option('n', "no-create", HelpText = "Write into the existing TARGET instead of creating it (its format is probed unless -O is given; it must be at least as large as SOURCE).")]
    public bool NoCreate { get; set; }

    [Option('S', "sparse-size", HelpText = "Runs of zeros this long (aligned; default 4k) are left unwritten; 0 writes everything (a fully allocated TARGET).")]
    public string? SparseSize { get; set; }

    [Option('m', "parallel", Default = 8, HelpText = "Requests in flight, 1 to 16.")]
    public int Parallel { get; set; }

    [Option('W', "out-of-order", HelpText = "Let writes reach TARGET out of order (faster on some storage; the layout of TARGET is less sequential).")]
    public bool OutOfOrder { get; set; }

    [Option('r', "rate-limit", HelpText = "Copy at most this many bytes per second (K, M, G suffixes), to spare a busy disk.")]
    public string? RateLimit { get; set; }

    [Option('U', "force-share", HelpText = "Read SOURCE even while another program writes it (the copy may be inconsistent).")]
    public bool ForceShare { get; set; }

    [Option('c', "compress", HelpText = "Compressed output (qcow2 only; not supported yet).")]
    public bool Compress { get; set; }

    [Option('l', "snapshot", HelpText = "Convert an internal snapshot (qcow2 only; not supported yet).")]
    public string? Snapshot { get; set; }

    [Value(0, MetaName = "SOURCE", Required = true, HelpText = "The image to read (with its backing chain).")]
    public string Source { get; set; } = "";

    [Value(1, MetaName = "TARGET", Required = true, HelpText = "The image to write. Created from scratch (replacing a file of that name only once the copy is complete) unless -n.")]
    public string Target { get; set; } = "";

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("Flatten a QED image and its backing chain into a sparse raw file", new ConvertOptions { Source = "vm.qed", Target = "vm.raw" }),
        new("Turn a raw disk into a QED image, with progress", new ConvertOptions { Progress = true, OutputFormat = "qed", Source = "disk.raw", Target = "disk.qed" }),
        new("A thin copy: only what differs from base.raw", new ConvertOptions { OutputFormat = "qed", Backing = "base.raw", BackingFormat = "raw", Source = "vm.qed", Target = "thin.qed" }),
    ];
}

internal static class ConvertVerb
{
    public static int Run(ConvertOptions o)
    {
        if (o.Compress)
        {
            throw new UsageException("-c: compressed output is a qcow2 feature, not supported yet");
        }

        if (o.Snapshot is not null)
        {
            throw new UsageException("-l: converting an internal snapshot is a qcow2 feature, not supported yet");
        }

        long sparse = ByteSize.TryParse(o.SparseSize ?? "4k") is { } s && s % 512 == 0 && s <= (16L << 20)
            ? s
            : throw new UsageException($"invalid -S '{o.SparseSize}': give 0 or a multiple of 512 bytes up to 16M");
        if (o.Parallel is < 1 or > 16)
        {
            throw new UsageException($"invalid -m {o.Parallel}: give 1 to 16 requests in flight");
        }

        if (o.BackingFormat is not null && o.Backing is null)
        {
            throw new UsageException("-F names the format of the -B backing file: give -B too");
        }

        if (o.NoCreate && (o.Backing is not null || o.FormatOptions is not null))
        {
            throw new UsageException("-n writes into an existing TARGET: -B and -o only apply when creating it");
        }

        var options = CreateVerb.ParseKeyValues(o.FormatOptions);
        RateLimit rate = LongRun.Rate(o.RateLimit);
        using IBlockImage source = ImageOpener.Open(o.Source, new ImageOpenOptions { ReadOnly = true, Format = o.Format, ForceShare = o.ForceShare });
        using var run = new LongRun(o.ShowProgress);
        if (File.Exists(o.Target) && ImageOpener.RealPath(o.Target) == ImageOpener.RealPath(o.Source))
        {
            throw new UsageException($"{o.Target}: is the source image itself");
        }

        run.Progress.Total = source.VirtualSize;
        var settings = new CopySettings
        {
            Parallelism = o.Parallel,
            OutOfOrder = o.OutOfOrder,
            SparseSize = sparse,
            Progress = run.Progress,
            Rate = rate,
        };
        IEnumerable<CopyRange> ranges = sparse == 0 ? [new CopyRange(0, source.VirtualSize, false)] : CopyRange.FromAllocation(source);

        if (o.NoCreate)
        {
            IntoExisting(o, source, ranges, settings, run.Token);
        }
        else
        {
            IntoNew(o, options, source, ranges, settings, run.Token);
        }

        run.Finish();
        return 0;
    }

    private static void IntoExisting(ConvertOptions o, IBlockImage source, IEnumerable<CopyRange> ranges, CopySettings settings, CancellationToken cancel)
    {
        // Unlike qemu-img (which then assumes raw and overwrites any header), the format is probed when -O is not given.
        using IBlockImage target = ImageOpener.Open(o.Target, new ImageOpenOptions { Format = o.OutputFormat });
        if (target.VirtualSize < source.VirtualSize)
        {
            throw new UsageException($"{o.Target}: is smaller ({target.VirtualSize} bytes) than {o.Source} ({source.VirtualSize} bytes)");
        }

        ImageCopier.Copy(source, target, ranges, settings, cancel);
        target.Flush();
    }

    /// <summary>Creates TARGET under a temporary name beside it and renames it into place only once complete and durable.</summary>
    private static void IntoNew(ConvertOptions o, Dictionary<string, string> options, IBlockImage source, IEnumerable<CopyRange> ranges,
        CopySettings settings, CancellationToken cancel)
    {
        if (Directory.Exists(o.Target))
        {
            throw new UsageException($"{o.Target}: is a directory");
        }

        if (File.Exists(o.Target))
        {
            // Replacing a file that QEMU or a mount of ours is using would pull it from under them.
            using IBlockImage inUse = ImageOpener.Open(o.Target, new ImageOpenOptions { Format = "raw" });
        }

        string temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(o.Target)) ?? "/", $".{Path.GetFileName(o.Target)}.converting-{Environment.ProcessId}");
        try
        {
            string format = o.OutputFormat ?? "raw";
            ImageOpener.Create(temp, format, new ImageCreateOptions
            {
                Size = source.VirtualSize,
                BackingFile = o.Backing,
                BackingFormat = o.BackingFormat,
                FormatOptions = options,
            });
            using (IBlockImage target = ImageOpener.Open(temp, new ImageOpenOptions { Format = format }))
            {
                ImageCopier.Copy(source, target, ranges, settings with
                {
                    TargetReadsZero = target.Backing is null,
                    Baseline = target.Backing,
                }, cancel);
                target.Flush();
            }

            File.Move(temp, o.Target, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
