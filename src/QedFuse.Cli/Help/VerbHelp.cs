using System.Reflection;
using CommandLine;
using CommandLine.Text;

namespace QedFuse.Cli.Help;

/// <summary>
/// How a verb calls itself: one synopsis line, as a man page's (several for several forms).
/// Every verb's options class carries at least one, after its [Verb(HelpText = "what it does.")].
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
internal sealed class UsageLineAttribute(string line) : Attribute
{
    public string Line { get; } = line;
}

/// <summary>A real command line a user would type, and what it does; a verb shows them in order.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
internal sealed class ExampleAttribute(string commandLine, string what) : Attribute
{
    public string CommandLine { get; } = commandLine;

    public string What { get; } = what;
}

/// <summary>
/// The help a verb prints: what it does, how to call it, examples, then its options (from the
/// CommandLineParser attributes). The overview lists every verb with what it does.
/// </summary>
internal static class VerbHelp
{
    private const int Width = 100;

    public static string For(ParserResult<object> result)
    {
        Type verb = result.TypeInfo.Current;
        var text = new System.Text.StringBuilder();
        text.Append(Summary(verb)).Append("\n\nUsage:\n");
        foreach (UsageLineAttribute u in verb.GetCustomAttributes<UsageLineAttribute>())
        {
            text.Append("  ").Append(u.Line).Append('\n');
        }

        var examples = verb.GetCustomAttributes<ExampleAttribute>().ToList();
        if (examples.Count > 0)
        {
            text.Append("\nExamples:\n");
            foreach (ExampleAttribute e in examples)
            {
                text.Append("  ").Append(e.CommandLine).Append('\n');
                text.Append("      ").Append(e.What).Append('\n');
            }
        }

        var options = new HelpText { AddDashesToOption = true, MaximumDisplayWidth = Width, AdditionalNewLineAfterOption = false, AutoVersion = false };
        options.AddOptions(result);
        text.Append("\nOptions:").Append(options.ToString().TrimEnd()).Append('\n');
        return text.ToString();
    }

    public static string Overview(IEnumerable<Type> verbs)
    {
        var text = new System.Text.StringBuilder();
        text.Append($"qedfuse: QEMU disk images ({QedFuse.Block.ImageOpener.Readable(includeRaw: true)}) as raw files through FUSE, and the qemu-img-style tools around them.\n\n");
        text.Append("Usage:\n  qedfuse VERB [OPTIONS] ARGUMENTS...\n  qedfuse help VERB\n\nVerbs:\n");
        foreach (Type t in verbs)
        {
            VerbAttribute v = t.GetCustomAttribute<VerbAttribute>()!;
            string summary = Summary(t);
            int stop = summary.IndexOf(". ", StringComparison.Ordinal);
            text.Append($"  {v.Name,-10}{(stop > 0 ? summary[..(stop + 1)] : summary)}\n");
        }

        text.Append("\nExit codes: 0 success, 1 error (check and compare: as qemu-img's).\n");
        return text.ToString();
    }

    /// <summary>The one-line usage of a verb, for error messages.</summary>
    public static string UsageLine(Type verb) => verb.GetCustomAttributes<UsageLineAttribute>().FirstOrDefault()?.Line ?? $"qedfuse {Name(verb)} ...";

    public static string Name(Type verb) => verb.GetCustomAttribute<VerbAttribute>()?.Name ?? "";

    private static string Summary(Type verb) => verb.GetCustomAttribute<VerbAttribute>()?.HelpText ?? "";
}
