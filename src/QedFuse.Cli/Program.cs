using CommandLine;
using CommandLine.Text;
using QedFuse.Block;
using QedFuse.Cli.Verbs;

namespace QedFuse.Cli;

/// <summary>
/// qedfuse: parse the verb, run it, and turn every failure into one line on stderr and a
/// non-zero exit. Verbs return their own exit codes (check follows qemu-img's).
/// </summary>
internal static class Program
{
    public const int ExitFailure = 1;

    private static readonly Type[] Verbs =
    [
        typeof(MountOptions), typeof(UnmountOptions), typeof(CreateOptions),
        typeof(InfoOptions), typeof(CheckOptions), typeof(MapOptions),
        typeof(StatsOptions), typeof(ThrottleOptions), typeof(RefreshOptions),
        typeof(ConvertOptions), typeof(CompareOptions), typeof(ResizeOptions),
        typeof(RebaseOptions), typeof(CommitOptions), typeof(SnapshotOptions),
    ];

    /// <summary>The exit code of a verb stopped by SIGINT/SIGTERM (128 + SIGINT, as shells report it).</summary>
    public const int ExitInterrupted = 130;

    private static int Main(string[] args)
    {
        using var parser = new Parser(s =>
        {
            s.HelpWriter = null;
            s.CaseInsensitiveEnumValues = true;
            s.AutoVersion = true;
            s.EnableDashDash = true; // resize IMAGE -- -1G
        });
        ParserResult<object> result = parser.ParseArguments(args is ["mount", ..] ? MountVerb.MergeRepeatedOptions(args) : args, Verbs);
        try
        {
            return result.MapResult(
                (MountOptions o) => MountVerb.Run(o),
                (UnmountOptions o) => UnmountVerb.Run(o),
                (CreateOptions o) => CreateVerb.Run(o),
                (InfoOptions o) => InfoVerb.Run(o),
                (CheckOptions o) => CheckVerb.Run(o),
                (MapOptions o) => MapVerb.Run(o),
                (StatsOptions o) => StatsVerb.Run(o),
                (ThrottleOptions o) => ThrottleVerb.Run(o),
                (RefreshOptions o) => RefreshVerb.Run(o),
                (ConvertOptions o) => ConvertVerb.Run(o),
                (CompareOptions o) => CompareVerb.Run(o),
                (ResizeOptions o) => ResizeVerb.Run(o),
                (RebaseOptions o) => RebaseVerb.Run(o),
                (CommitOptions o) => CommitVerb.Run(o),
                (SnapshotOptions o) => SnapshotVerb.Run(o),
                errors => Usage(result, errors));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or UsageException)
        {
            Console.Error.WriteLine($"qedfuse: {OneLine(e.Message)}");
            return ExitFailure;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("qedfuse: interrupted; every image was left consistent (an unfinished convert target is removed)");
            return ExitInterrupted;
        }
    }

    /// <summary>Help when asked for (stdout, exit 0); otherwise the first parse error as one line.</summary>
    private static int Usage(ParserResult<object> result, IEnumerable<Error> errors)
    {
        var list = errors.ToList();
        if (list.Any(e => e.Tag is ErrorType.HelpRequestedError or ErrorType.HelpVerbRequestedError or ErrorType.VersionRequestedError))
        {
            var help = HelpText.AutoBuild(result, h =>
            {
                h.Heading = "qedfuse — QEMU disk images as raw files through FUSE";
                h.Copyright = "Run 'qedfuse VERB --help' for a verb's options. Exit codes: 0 ok, 1 error (check: qemu-img's).";
                h.AddDashesToOption = true;
                h.MaximumDisplayWidth = 100;
                return h;
            }, e => e, verbsIndex: true);
            Console.WriteLine(list.Any(e => e.Tag == ErrorType.VersionRequestedError) ? help.Heading : help.ToString());
            return 0;
        }

        Error first = list[0];
        string verb = result.TypeInfo.Current.GetCustomAttributes(typeof(VerbAttribute), false) is [VerbAttribute v, ..] ? $" {v.Name}" : "";
        string message = first switch
        {
            { Tag: ErrorType.NoVerbSelectedError } => "no verb given (mount, unmount, create, info, check, map, stats, throttle, refresh, convert, compare, resize, rebase, commit, snapshot)",
            MissingRequiredOptionError { NameInfo.NameText: "" } => "missing argument",
            SequenceOutOfRangeError { NameInfo.NameText: "" } => "missing argument",
            _ => SentenceBuilder.Create().FormatError(first),
        };

        Console.Error.WriteLine($"qedfuse:{verb} {OneLine(message)} (see 'qedfuse{verb} --help')");
        return ExitFailure;
    }

    public static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}

/// <summary>A command line that parses but does not make sense; reported as one line.</summary>
internal sealed class UsageException(string message) : Exception(message);
