using CommandLine;

namespace QedFuse.Cli.Verbs;

/// <summary>The flags every long-running image tool shares, as qemu-img's -p and -q.</summary>
internal abstract class LongVerbOptions
{
    [Option('p', "progress", HelpText = "Show progress (also printed once on SIGUSR1).")]
    public bool Progress { get; set; }

    [Option('q', "quiet", HelpText = "Print nothing but errors (compare: the exit code tells).")]
    public bool Quiet { get; set; }

    public bool ShowProgress => Progress && !Quiet;
}
