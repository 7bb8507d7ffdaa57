using System.Text.Json;
using QedFuse.Cli.Tests.Infra;

namespace QedFuse.Cli.Tests;

/// <summary>
/// qedfuse list / status and unmount -a (issue 13 item 12). Other people's mounts are live on a
/// shared machine, so everything runs in a private mount namespace (unshare -m, propagation
/// private) with its own /run/qedfuse: there, unmount -a can only reach copies of their mounts,
/// which are detached in the namespace first, never the mounts themselves.
/// </summary>
public sealed class ListTests
{
    private const string Script = """
        set -eu
        Q="$1"; D="$2"
        [ "$(findmnt -no PROPAGATION /)" = private ] || { echo "namespace is not private" >&2; exit 99; }
        mkdir -p /run/qedfuse
        mount -t tmpfs -o mode=0755 qedfuse-test /run/qedfuse
        grep ' - fuse.qedfuse ' /proc/self/mountinfo | cut -d' ' -f5 | while read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done
        trap 'for m in "$D/a" "$D/b"; do fusermount3 -u -z "$m" 2>/dev/null || true; done' EXIT
        "$Q" mount "$D/one.qed" "$D/a"
        "$Q" mount -o ro "$D/two.qed" "$D/three.qed" "$D/b"
        echo "== list"; "$Q" list
        echo "== json"; "$Q" status --output=json
        rc=0; "$Q" unmount -a || rc=$?
        echo "== unmount rc=$rc"
        echo "== after"; "$Q" list; grep -c ' - fuse.qedfuse ' /proc/self/mountinfo || true
        """;

    [Fact]
    public void List_shows_each_mount_and_unmount_all_closes_them_cleanly_in_a_private_namespace()
    {
        using var t = new TempDir();
        foreach (string name in new[] { "one", "two", "three" })
        {
            Qemu.CreateQed(t[$"{name}.qed"], "16M");
        }

        t.Dir("a");
        t.Dir("b");
        RunResult r = Run.Exec("unshare", ["-m", "--propagation", "private", "bash", "-c", Script, "list-test", Env.Qedfuse, t.Path], TimeSpan.FromSeconds(240));
        Assert.True(r.ExitCode == 0, $"{r}");
        string[] sections = r.Stdout.Split("== ");
        string list = sections.Single(s => s.StartsWith("list\n", StringComparison.Ordinal));
        string json = sections.Single(s => s.StartsWith("json\n", StringComparison.Ordinal))[5..];
        string after = sections.Single(s => s.StartsWith("after\n", StringComparison.Ordinal))[6..];

        string[] rows = Text.Lines(list).Skip(1).ToArray();
        Assert.StartsWith("MOUNTPOINT", Text.Lines(list)[1]);
        Assert.Equal(2, rows.Length - 1);
        Assert.Matches($"^{t["a"]} +rw +[0-9]+ +[0-9]+s +{t["one.qed"]}$", rows[1]);
        Assert.Matches($"^{t["b"]} +ro +[0-9]+ +[0-9]+s +{t["two.qed"]} {t["three.qed"]}$", rows[2]);

        JsonElement[] mounts = JsonDocument.Parse(json).RootElement.EnumerateArray().ToArray();
        Assert.Equal([t["a"], t["b"]], mounts.Select(m => m.GetProperty("mountpoint").GetString()));
        Assert.Equal(["rw", "ro"], mounts.Select(m => m.GetProperty("mode").GetString()));
        Assert.Equal([t["two.qed"], t["three.qed"]], mounts[1].GetProperty("images").EnumerateArray().Select(i => i.GetString()));
        int[] pids = mounts.Select(m => m.GetProperty("pid").GetInt32()).ToArray();
        Assert.All(mounts, m => Assert.InRange(m.GetProperty("uptime-seconds").GetInt64(), 0, 240));

        Assert.Contains("== unmount rc=0\n", r.Stdout);
        Assert.Equal("0", after.Trim());
        Assert.All(pids, pid => Assert.False(Mounts.IsAlive(pid), $"daemon {pid} still running after unmount -a"));
        foreach (string name in new[] { "one", "two", "three" })
        {
            Assert.False(ImageFile.NeedCheck(t[$"{name}.qed"]), $"{name}.qed left with need-check set");
            Assert.Equal(0, Qemu.Check(t[$"{name}.qed"]).ExitCode);
        }
    }
}
