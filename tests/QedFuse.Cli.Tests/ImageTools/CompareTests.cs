using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests.ImageTools;

/// <summary>compare prints what qemu-img compare prints and exits as it does, pair by pair.</summary>
public sealed class CompareTests
{
    [Fact]
    public void Output_and_exit_codes_match_qemu_img()
    {
        using var t = new TempDir();
        Qemu.Img("create", "-q", "-f", "raw", t["a.raw"], "2M");
        Tool.Fill(t["a.raw"], "raw", "write -P 0x10 0 64k");
        Qemu.CreateQed(t["same.qed"], "2M");
        Tool.Fill(t["same.qed"], "qed", "write -P 0x10 0 64k", "write -z 1M 64k");
        Qemu.Img("create", "-q", "-f", "raw", t["diff.raw"], "2M");
        Tool.Fill(t["diff.raw"], "raw", "write -P 0x10 0 64k", "write -P 0x01 70000 1");
        Qemu.CreateQed(t["longer.qed"], "3M");
        Tool.Fill(t["longer.qed"], "qed", "write -P 0x10 0 64k", "write -z 2M 64k");
        Qemu.CreateQed(t["tail.qed"], "3M");
        Tool.Fill(t["tail.qed"], "qed", "write -P 0x10 0 64k", "write -P 0x02 2500000 10");
        Qemu.Img("create", "-q", "-f", "raw", t["zeros.raw"], "2M");
        Tool.Fill(t["zeros.raw"], "raw", "write -P 0x10 0 64k", "write -P 0 512k 64k");

        (string[] Args, int Exit)[] cases =
        [
            (["a.raw", "same.qed"], 0),
            (["a.raw", "diff.raw"], 1),
            (["diff.raw", "same.qed"], 1),
            (["a.raw", "longer.qed"], 0),
            (["longer.qed", "a.raw"], 0),
            (["a.raw", "tail.qed"], 1),
            (["-s", "a.raw", "longer.qed"], 1),
            (["-s", "a.raw", "same.qed"], 1),
            (["-s", "zeros.raw", "zeros.raw"], 0),
            (["a.raw", "zeros.raw"], 0),
            (["-f", "raw", "-F", "qed", "a.raw", "same.qed"], 0),
            (["a.raw", "missing.qed"], 2),
        ];
        foreach (var (args, exit) in cases)
        {
            string[] full = ["compare", .. args.Select(a => a.Contains('.') ? t[a] : a)];
            RunResult ours = Env.Qf(full);
            RunResult theirs = Qemu.ImgRaw(full);
            string what = string.Join(' ', args);
            Assert.True(theirs.ExitCode == exit, $"oracle: {what}: {theirs}");
            Assert.True(ours.ExitCode == exit, $"{what}: {ours}");
            Assert.Equal(theirs.Stdout, ours.Stdout);
            if (exit == 2)
            {
                Assert.Single(Text.Lines(ours.Stderr));
            }
        }
    }
}
