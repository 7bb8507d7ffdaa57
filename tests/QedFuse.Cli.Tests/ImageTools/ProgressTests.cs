using System.Text.RegularExpressions;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.ImageTools;

/// <summary>-p prints qemu-img's progress lines (plain lines when not on a terminal); SIGUSR1 prints one more.</summary>
public sealed partial class ProgressTests
{
    [GeneratedRegex(@"^    \((\d+\.\d\d)/100%\)$")]
    private static partial Regex ProgressLine();

    [Fact]
    public void Progress_lines_advance_to_100_and_sigusr1_adds_one()
    {
        using var t = new TempDir();
        Tool.RawFull(t["src.raw"], 8, 0x42);
        using var p = new Background(Env.Qedfuse, "convert", "-p", "-r", "4M", "-O", "qed", t["src.raw"], t["dst.qed"]);
        p.WaitForLine(l => l.Contains("(0.00/100%)"), TimeSpan.FromSeconds(60), "the first progress line");
        p.Signal(Signals.SIGUSR1);
        RunResult r = p.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.Equal(0, r.ExitCode);
        string[] lines = Text.Lines(r.Stdout);
        Assert.All(lines, l => Assert.Matches(ProgressLine(), l));
        // Every tenth once, in order (0, 10, ... 100), plus the line SIGUSR1 asked for.
        var tenths = lines.Select(l => double.Parse(ProgressLine().Match(l).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))
            .Where(v => v % 10 == 0).Distinct().ToList();
        Assert.Equal(Enumerable.Range(0, 11).Select(i => i * 10.0), tenths);
        Assert.Equal(12, lines.Length);
        Tool.AssertSameContent(t["src.raw"], t["dst.qed"]);
    }

    [Fact]
    public void On_a_terminal_the_figure_is_rewritten_in_place()
    {
        using var t = new TempDir();
        Tool.RawFull(t["src.raw"], 4, 0x42);
        // script(1) gives the command a pseudo-terminal and copies what it prints.
        RunResult r = Run.Exec("script", ["-qec", $"{Env.Qedfuse} convert -p -r 8M -O qed {t["src.raw"]} {t["dst.qed"]}", "/dev/null"],
            TimeSpan.FromSeconds(60)).Ok();
        string output = r.Stdout.Replace("\r\n", "\n");
        Assert.Contains("    (0.00/100%)\r", output);
        Assert.EndsWith("    (100.00/100%)\r\n", output);
        Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Tool.AssertSameContent(t["src.raw"], t["dst.qed"]);
    }

    [Fact]
    public void Check_takes_p_too()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["a.qed"], "64M");
        Tool.Fill(t["a.qed"], "qed", "write -P 1 0 1M");
        RunResult r = Env.Qf("check", "-p", t["a.qed"]).Ok();
        string[] lines = Text.Lines(r.Stdout);
        Assert.Equal("    (0.00/100%)", lines[0]);
        Assert.Contains("    (100.00/100%)", lines);
        Assert.Contains("No errors were found on the image.", lines);
    }
}
