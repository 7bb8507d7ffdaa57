using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>--help that teaches, and usage errors in plain words (issue 13 item 11).</summary>
public sealed class HelpTests
{
    /// <summary>The verbs the overview lists (the lines under "Verbs:").</summary>
    private static List<string> Verbs()
    {
        string overview = Env.Qf("--help").Ok().Stdout;
        return overview[(overview.IndexOf("Verbs:\n", StringComparison.Ordinal) + 7)..]
            .Split('\n').TakeWhile(l => l.StartsWith("  ", StringComparison.Ordinal)).Select(l => l.Trim().Split(' ')[0]).ToList();
    }

    [Fact]
    public void Every_verb_help_starts_with_what_it_does_then_usage_and_real_examples()
    {
        List<string> verbs = Verbs();
        Assert.Contains("mount", verbs);
        Assert.Contains("unmount", verbs);
        Assert.Contains("info", verbs);
        foreach (string verb in verbs)
        {
            string help = Env.Qf(verb, "--help").Ok().Stdout;
            string[] lines = help.Split('\n');
            Assert.True(lines[0].Length > 10 && char.IsUpper(lines[0][0]) && lines[0].Contains('.'), $"{verb}: first line should say what it does: {lines[0]}");
            Assert.Contains($"\nUsage:\n  qedfuse {verb}", help);
            string[] examples = lines.SkipWhile(l => l != "Examples:").Skip(1).TakeWhile(l => l.Length > 0).Where(l => l.StartsWith($"  qedfuse {verb}", StringComparison.Ordinal)).ToArray();
            Assert.True(examples.Length > 0, $"{verb} --help has no example: {help}");
            Assert.DoesNotContain("--cache-size 32M", help);
            Assert.Contains("\nOptions:", help);
            Assert.Equal(help, Env.Qf("help", verb).Ok().Stdout);
        }
    }

    [Fact]
    public void Bad_output_value_and_missing_mount_point_are_named_in_plain_words()
    {
        using var t = new TempDir();
        Qemu.CreateQed(t["disk.qed"], "1M");
        foreach (string verb in new[] { "info", "check", "map" })
        {
            RunResult r = Env.Qf(verb, "--output", "xml", t["disk.qed"]);
            Assert.Equal(1, r.ExitCode);
            Assert.Equal($"qedfuse {verb}: --output 'xml': give human or json (see 'qedfuse help {verb}')", Assert.Single(Text.Lines(r.Stderr)));
        }

        RunResult mount = Env.Qf("mount", t["disk.qed"]);
        Assert.Equal(1, mount.ExitCode);
        Assert.StartsWith("qedfuse: missing MOUNTPOINT: give the directory to mount on after the image", Assert.Single(Text.Lines(mount.Stderr)));

        RunResult unmount = Env.Qf("unmount");
        Assert.Equal(1, unmount.ExitCode);
        Assert.StartsWith("qedfuse: missing MOUNTPOINT; usage: qedfuse unmount", Assert.Single(Text.Lines(unmount.Stderr)));

        RunResult verbless = Env.Qf("mnt");
        Assert.StartsWith("qedfuse: unknown verb 'mnt' (verbs: mount, unmount,", Assert.Single(Text.Lines(verbless.Stderr)));
    }
}
