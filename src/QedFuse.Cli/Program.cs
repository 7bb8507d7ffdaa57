using CommandLine;
using CommandLine.Text;
using QedFuse.Block;
using QedFuse.Cli.Help;
using QedFuse.Cli.Verbs;

namespace QedFuse.Cli;

/// <summary>
/// qedfuse: parse the verb, run it, and turn every failure into one line on stderr and a
/// non-zero exit. Verbs return their own exit codes (check follows qemu-img's).
/// </summary>
internal static class Program
{
    public const int ExitFailure = 1;

    /// <summary>
    /// Every verb, in the order the overview lists them. Adding one: an options class with
    /// [Verb("name", HelpText = "What it does, in a sentence.")], one or more
    /// [UsageLine("qedfuse name ...")] and at least one [Example("qedfuse name ...", "what that does")]
    /// (HelpTests checks each verb listed here); a case in Main's MapResult; bad input thrown as a
    /// UsageException or BadImageException (one line each); the verb's way out of an image in use
    /// or on a read-only file system as a line in <see cref="Remedies"/>.
    /// </summary>
    private static readonly Type[] Verbs =
    [
        typeof(MountOptions), typeof(UnmountOptions), typeof(CreateOptions),
        typeof(InfoOptions), typeof(CheckOptions), typeof(MapOptions), typeof(ListOptions),
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
                (ListOptions o) => ListVerb.Run(o),
                (StatsOptions o) => StatsVerb.Run(o),
                (ThrottleOptions o) => ThrottleVerb.Run(o),
                (RefreshOptions o) => RefreshVerb.Run(o),
                (ConvertOptions o) => ConvertVerb.Run(o),
                (CompareOptions o) => CompareVerb.Run(o),
                (ResizeOptions o) => ResizeVerb.Run(o),
                (RebaseOptions o) => RebaseVerb.Run(o),
                (CommitOptions o) => CommitVerb.Run(o),
                (SnapshotOptions o) => SnapshotVerb.Run(o),
                errors => Usage(args, parser, result, errors));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or UsageException)
        {
            object? verb = result is Parsed<object> parsed ? parsed.Value : null;
            Console.Error.WriteLine($"qedfuse: {OneLine(Remedies.Explain(verb, e) ?? e.Message)}");
            return ExitFailure;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("qedfuse: interrupted; every image was left consistent (an unfinished convert target is removed)");
            return ExitInterrupted;
        }
    }

    /// <summary>Help when asked for (stdout, exit 0); otherwise the first parse error as one line in plain words.</summary>
    private static int Usage(string[] args, Parser parser, ParserResult<object> result, IEnumerable<Error> errors)
    {
        var list = errors.ToList();
        switch (list.FirstOrDefault(e => e.Tag is ErrorType.HelpRequestedError or ErrorType.HelpVerbRequestedError or ErrorType.VersionRequestedError))
        {
            case VersionRequestedError:
                Console.WriteLine(HeadingInfo.Default);
                return 0;
            case HelpVerbRequestedError { Matched: true, Type: { } type }:
                // "qedfuse help VERB": the verb's own help, as "qedfuse VERB --help" prints it.
                Console.Write(VerbHelp.For(parser.ParseArguments([VerbHelp.Name(type), "--help"], Verbs)));
                return 0;
            case HelpRequestedError when result.TypeInfo.Current is var t && Verbs.Contains(t):
                Console.Write(VerbHelp.For(result));
                return 0;
            case not null:
                Console.Write(VerbHelp.Overview(Verbs));
                return 0;
        }

        Type current = result.TypeInfo.Current;
        string verb = Verbs.Contains(current) ? VerbHelp.Name(current) : "";
        string message = list[0] switch
        {
            NoVerbSelectedError => $"no verb given (verbs: {VerbNames})",
            BadVerbSelectedError bad => $"unknown verb '{bad.Token}' (verbs: {VerbNames})",
            BadFormatConversionError bad => $"--{bad.NameInfo.LongName}{Given(args, bad.NameInfo)}: {ValueRule(current, bad.NameInfo.LongName)}",
            UnknownOptionError unknown => $"unknown option '{(unknown.Token.Length > 1 ? "--" : "-")}{unknown.Token}'",
            MissingRequiredOptionError { NameInfo.NameText: "" } or SequenceOutOfRangeError { NameInfo.NameText: "" }
                => $"missing {MissingArguments(current)}; usage: {VerbHelp.UsageLine(current)}",
            MissingValueOptionError missing => $"--{missing.NameInfo.LongName} needs a value",
            var other => SentenceBuilder.Create().FormatError(other),
        };

        Console.Error.WriteLine(verb.Length > 0
            ? $"qedfuse {verb}: {OneLine(message)} (see 'qedfuse help {verb}')"
            : $"qedfuse: {OneLine(message)} (see 'qedfuse help')");
        return ExitFailure;
    }

    /// <summary>" xml" for "--output xml" or "--output=xml": the value as the user gave it.</summary>
    private static string Given(string[] args, NameInfo name)
    {
        for (int i = 0; i < args.Length; i++)
        {
            foreach (string flag in new[] { "--" + name.LongName, "-" + name.ShortName }.Where(f => f.Length > 1))
            {
                if (args[i].StartsWith(flag + "=", StringComparison.Ordinal))
                {
                    return $" '{args[i][(flag.Length + 1)..]}'";
                }

                if (args[i] == flag && i + 1 < args.Length)
                {
                    return $" '{args[i + 1]}'";
                }
            }
        }

        return "";
    }

    private static string VerbNames => string.Join(", ", Verbs.Select(VerbHelp.Name));

    /// <summary>What an option takes, in words: its enum's values, or the kind of number.</summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "The verb types live in this assembly, which the build roots whole (TrimmerRootAssembly).")]
    private static string ValueRule(Type verb, string longName)
    {
        Type? type = verb.GetProperties()
            .FirstOrDefault(p => p.GetCustomAttributes(typeof(OptionAttribute), false) is [OptionAttribute o] && o.LongName == longName)?.PropertyType;
        type = type is null ? null : Nullable.GetUnderlyingType(type) ?? type;
        return type switch
        {
            { IsEnum: true } => $"give {string.Join(" or ", Enum.GetNames(type).Select(n => n.ToLowerInvariant()))}",
            _ when type == typeof(int) || type == typeof(long) => "give a whole number",
            _ when type == typeof(double) => "give a number",
            _ => "not a valid value",
        };
    }

    /// <summary>The positional arguments a verb requires, by their names in its usage: "IMAGE", "MOUNTPOINT".</summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "The verb types live in this assembly, which the build roots whole (TrimmerRootAssembly).")]
    private static string MissingArguments(Type verb)
    {
        var names = verb.GetProperties()
            .Select(p => p.GetCustomAttributes(typeof(ValueAttribute), false) is [ValueAttribute v] ? v : null)
            .Where(v => v is not null && (v.Required || v.Min > 0))
            .OrderBy(v => v!.Index)
            .Select(v => v!.MetaName)
            .ToList();
        return names.Count > 0 ? string.Join(" ", names) : "an argument";
    }

    public static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}

/// <summary>A command line that parses but does not make sense; reported as one line.</summary>
internal sealed class UsageException(string message) : Exception(message);
