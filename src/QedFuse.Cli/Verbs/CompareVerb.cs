using CommandLine;
using CommandLine.Text;
using QedFuse.Block;
using QedFuse.Block.Tools;
using QedFuse.Cli.Output;

namespace QedFuse.Cli.Verbs;

[Verb("compare", HelpText = "Check whether two images show the same content, whatever their formats (like qemu-img compare). Exit: 0 identical, 1 different, 2 cannot open, 4 read error.")]
internal sealed class CompareOptions : LongVerbOptions
{
    [Option('s', "strict", HelpText = "Also fail when the sizes differ or a range is stored in one image and not in the other.")]
    public bool Strict { get; set; }

    [Option('f', "format", HelpText = "Format of IMAGE1; probed when omitted.")]
    public string? Format1 { get; set; }

    [Option('F', "format2", HelpText = "Format of IMAGE2; probed when omitted.")]
    public string? Format2 { get; set; }

    [Option('U', "force-share", HelpText = "Open the images even while another program writes them.")]
    public bool ForceShare { get; set; }

    [Value(0, MetaName = "IMAGE1", Required = true)]
    public string Image1 { get; set; } = "";

    [Value(1, MetaName = "IMAGE2", Required = true)]
    public string Image2 { get; set; } = "";

    [Usage(ApplicationAlias = "qedfuse")]
    public static IEnumerable<Example> Examples =>
    [
        new("Did the conversion keep every byte? (a larger image must read as zeros past the smaller one's end)", new CompareOptions { Image1 = "vm.qed", Image2 = "vm.raw" }),
        new("Same size and same allocation too", new CompareOptions { Strict = true, Image1 = "a.qed", Image2 = "b.qed" }),
    ];
}

internal static class CompareVerb
{
    public const int ExitDifferent = 1;
    public const int ExitOpenError = 2;
    public const int ExitReadError = 4;

    public static int Run(CompareOptions o)
    {
        IBlockImage? a = null, b = null;
        try
        {
            a = ImageOpener.Open(o.Image1, new ImageOpenOptions { ReadOnly = true, Format = o.Format1, ForceShare = o.ForceShare });
            b = ImageOpener.Open(o.Image2, new ImageOpenOptions { ReadOnly = true, Format = o.Format2, ForceShare = o.ForceShare });
        }
        catch (IOException e)
        {
            a?.Dispose();
            return Error(e, ExitOpenError);
        }

        using (a)
        using (b)
        {
            using var run = new LongRun(o.ShowProgress);
            CompareOutcome r;
            try
            {
                r = ImageComparer.Compare(a, b, o.Strict, run.Progress, run.Token);
            }
            catch (IOException e)
            {
                return Error(e, ExitReadError);
            }

            run.Finish();
            Report(o.Quiet, r);
            return r.Verdict == CompareVerdict.Identical ? 0 : ExitDifferent;
        }
    }

    private static void Report(bool quiet, CompareOutcome r)
    {
        if (quiet)
        {
            return;
        }

        if (r.Verdict == CompareVerdict.SizeMismatch)
        {
            Console.WriteLine("Strict mode: Image size mismatch!");
            return;
        }

        if (r.Verdict == CompareVerdict.StatusMismatch)
        {
            Console.WriteLine($"Strict mode: Offset {r.Offset} block status mismatch!");
            return;
        }

        if (r.SizesDiffer)
        {
            Console.WriteLine("Warning: Image size mismatch!");
        }

        Console.WriteLine(r.Verdict == CompareVerdict.Identical ? "Images are identical." : $"Content mismatch at offset {r.Offset}!");
    }

    private static int Error(IOException e, int exitCode)
    {
        Console.Error.WriteLine($"qedfuse: {Program.OneLine(e.Message)}");
        return exitCode;
    }
}
