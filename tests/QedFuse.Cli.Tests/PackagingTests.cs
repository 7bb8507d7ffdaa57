using System.Text.RegularExpressions;
using QedFuse.Cli.Tests.Infra;
using static QedFuse.Cli.Tests.Infra.PrivateNamespace;

namespace QedFuse.Cli.Tests;

/// <summary>
/// What an administrator installs: the binary alone (no .NET runtime), make install, the Debian
/// package (installed, used and removed in a private mount namespace over an overlay of /usr and
/// /var, so the machine's own package database never changes), the man page and completion.
/// </summary>
public sealed partial class PackagingTests
{
    [Fact]
    public void BinaryRunsMountsAndUnmountsWithNoDotnetOnTheMachine()
    {
        using var t = new TempDir();
        string img = t["a.qed"];
        Qemu.CreateQed(img, "16M");
        Qemu.Io(img, "write -P 0x42 0 64k");
        string mnt = t.Dir("mnt");
        string qf = Repo.ResolvedQedfuse();
        string script = $$"""
            mnt={{Q(mnt)}}
            trap 'umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true' EXIT
            # No .NET: hide the SDK and runtimes (and the dotnet on PATH, a link into them).
            for d in /usr/share/dotnet /usr/lib/dotnet /root/.dotnet /opt/dotnet; do [ -d "$d" ] && mount -t tmpfs none "$d"; done
            if command -v dotnet >/dev/null && dotnet --info >/dev/null 2>&1; then echo DOTNET-STILL-THERE; fi
            env -i {{Q(qf)}} info --output=json {{Q(img)}} | grep '"format"'
            env -i {{Q(qf)}} mount {{Q(img)}} "$mnt"
            echo "READ $(head -c 65536 "$mnt/a.raw" | od -An -tx1 | tr -s ' \n' ' ' | cut -c1-12)"
            pid=$(cat {{Q(Mounts.PidFile(mnt))}})
            env -i {{Q(qf)}} unmount "$mnt"
            echo "DAEMON-GONE $(grep -qs qedfuse /proc/$pid/cmdline && echo no || echo yes)"
            """;
        RunResult r = Bash(script, TimeSpan.FromSeconds(120));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.DoesNotContain("DOTNET-STILL-THERE", r.Stdout);
        Assert.Contains("\"format\": \"qed\"", r.Stdout);
        Assert.Contains("READ  42 42 42 42", r.Stdout);
        Assert.Contains("DAEMON-GONE yes", r.Stdout);
        Assert.False(ImageFile.NeedCheck(img));
    }

    [Fact]
    public void MakeInstallHonoursDestdirAndInstallsNoDebugFiles()
    {
        using var t = new TempDir();
        string dest = t.Dir("stage");
        RunResult r = Run.Exec("make", ["-C", Repo.Root, "--no-print-directory", "install-files", $"DESTDIR={dest}", "PREFIX=/opt/qf"], TimeSpan.FromSeconds(120));
        Assert.True(r.ExitCode == 0, r.ToString());
        string[] files = Directory.GetFileSystemEntries(dest, "*", SearchOption.AllDirectories)
            .Where(f => !Directory.Exists(f)).Select(f => f[dest.Length..]).Order().ToArray();
        Assert.Equal(
            ["/opt/qf/bin/qedfuse", "/opt/qf/share/bash-completion/completions/qedfuse", "/opt/qf/share/man/man1/qedfuse.1",
             "/sbin/mount.fuse.qedfuse", "/sbin/mount.qedfuse"],
            files);
        // What make says it installed names the files where they went, DESTDIR included.
        Assert.Contains($"installed {dest}/opt/qf/bin/qedfuse, {dest}/sbin/mount.qedfuse", r.Stdout);
        Assert.Contains($"{dest}/opt/qf/share/man/man1/qedfuse.1 and {dest}/opt/qf/share/bash-completion/completions/qedfuse", r.Stdout);
        // The helper calls the binary where it will be, not under DESTDIR, and not through PATH.
        Assert.Contains("QEDFUSE=/opt/qf/bin/qedfuse\n", File.ReadAllText(Path.Combine(dest, "sbin/mount.qedfuse")));
    }

    [Fact]
    public void DebianPackageInstallsMountsThroughFstabAndRemovesWithoutTrace()
    {
        string deb = Directory.GetFiles(Repo.File("out"), "qedfuse_*.deb").SingleOrDefault()
            ?? throw new Xunit.Sdk.XunitException("no out/qedfuse_*.deb: run 'make deb' (make test does)");
        RunResult fields = Run.Exec("dpkg-deb", "-f", deb, "Package", "Depends").Ok();
        Assert.Contains("Package: qedfuse", fields.Stdout);
        Assert.Matches(@"Depends:.*\bfuse3\b", fields.Stdout);

        using var t = new TempDir();
        string img = t["vm.qed"];
        Qemu.CreateQed(img, "32M");
        string mnt = t.Dir("mnt");
        string fstab = t["fstab"];
        File.WriteAllText(fstab, $"{img} {mnt} qedfuse rw,nofail,x-systemd.automount 0 0\n");
        foreach (string d in new[] { "usr-up", "usr-work", "var-up", "var-work" })
        {
            t.Dir(d);
        }

        string script = $$"""
            t={{Q(t.Path)}}; mnt={{Q(mnt)}}
            trap 'umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true' EXIT
            mount -t overlay overlay -o lowerdir=/usr,upperdir="$t/usr-up",workdir="$t/usr-work" /usr
            mount -t overlay overlay -o lowerdir=/var,upperdir="$t/var-up",workdir="$t/var-work" /var
            for d in /usr/share/dotnet /usr/lib/dotnet /root/.dotnet; do [ -d "$d" ] && mount -t tmpfs none "$d"; done
            rm -f /var/lib/man-db/auto-update # no man-db index rebuild in the triggers: it takes a minute
            dpkg -i {{Q(deb)}} >/dev/null
            echo "STATUS $(dpkg-query -W -f '${Status}' qedfuse)"
            echo "WHICH $(command -v qedfuse)"
            echo "MAN $(man -w qedfuse)"
            echo "COMPLETION $(bash -c 'source /usr/share/bash-completion/completions/qedfuse; COMP_WORDS=(qedfuse mo); COMP_CWORD=1; _qedfuse; echo ${COMPREPLY[*]}')"
            env -i /usr/bin/mount -T {{Q(fstab)}} "$mnt"
            echo "MOUNTED $(grep -cF " $mnt " /proc/self/mountinfo)"
            pid=$(cat {{Q(Mounts.PidFile(mnt))}})
            head -c 65536 /dev/zero | tr '\0' '\167' | dd of="$mnt/vm.raw" bs=64k seek=3 conv=notrunc,fsync status=none
            env -i /usr/bin/umount "$mnt"
            for i in $(seq 600); do grep -qs qedfuse /proc/$pid/cmdline || break; sleep 0.1; done
            echo "DAEMON-GONE $(grep -qs qedfuse /proc/$pid/cmdline && echo no || echo yes)"
            dpkg -r qedfuse >/dev/null
            echo "AFTER $(dpkg-query -W -f '${Status}' qedfuse 2>/dev/null || echo none)"
            # Whatever the package put under /usr (and /sbin, a link to usr/sbin) is gone: the overlay's
            # upper layer holds no file, only directories it copied up on the way.
            echo "LEFT-USR $(find "$t/usr-up" ! -type d | sed "s|$t/usr-up||" | tr '\n' ' ')"
            echo "LEFT-VAR $(find "$t/var-up" ! -type d | sed "s|$t/var-up|/var|" | grep -v -e '^/var/lib/dpkg/' -e '^/var/lib/man-db/' -e '^/var/log/' -e '^/var/cache/' | tr '\n' ' ')"
            """;
        RunResult r = Bash(script, TimeSpan.FromSeconds(180));
        Assert.True(r.ExitCode == 0, r.ToString());
        string Line(string key) => Text.Lines(r.Stdout).FirstOrDefault(l => l.StartsWith(key + " ", StringComparison.Ordinal))?[(key.Length + 1)..]
            ?? throw new Xunit.Sdk.XunitException($"no {key} line: {r}");
        Assert.Equal("install ok installed", Line("STATUS"));
        Assert.Equal("/usr/bin/qedfuse", Line("WHICH"));
        Assert.Equal("/usr/share/man/man1/qedfuse.1.gz", Line("MAN"));
        Assert.Equal("mount", Line("COMPLETION"));
        Assert.Equal("1", Line("MOUNTED"));
        Assert.Equal("yes", Line("DAEMON-GONE"));
        Assert.DoesNotContain("install ok installed", Line("AFTER"));
        Assert.Equal("", Line("LEFT-USR").Trim());
        Assert.Equal("", Line("LEFT-VAR").Trim());
        Assert.False(ImageFile.NeedCheck(img));
        Assert.Equal(0, Qemu.Check(img).ExitCode);
        Qemu.Io(img, "read -P 0x77 192k 64k", "read -P 0 0 192k");
    }

    [Fact]
    public void ManPageDocumentsEveryVerbAndOptionAndIsCleanForMan()
    {
        string page = File.ReadAllText(Repo.File("packaging/qedfuse.1"));
        string plain = page.Replace("\\-", "-");
        foreach (string verb in Verbs())
        {
            Assert.Matches(new Regex($"^\\.SS .*\\b{Regex.Escape(verb)}\\b", RegexOptions.Multiline), page);
            foreach (string option in Options(verb))
            {
                Assert.True(plain.Contains(option, StringComparison.Ordinal), $"qedfuse {verb} {option} is not in the man page");
            }
        }

        foreach (string section in new[] { "EXIT STATUS", "FSTAB", "LOGGING" })
        {
            Assert.Contains($".SH {(section.Contains(' ') ? $"\"{section}\"" : section)}", page);
        }

        // The page's fstab example is the line FstabTests mounts.
        Assert.Contains($"qedfuse  {FstabTests.ReadmeOptions}", plain);
        RunResult man = Run.Exec("man", ["--warnings", "-E", "UTF-8", "-l", Repo.File("packaging/qedfuse.1")], TimeSpan.FromSeconds(60));
        Assert.True(man.ExitCode == 0 && man.Stderr.Trim().Length == 0, man.ToString());
        Assert.Contains("qedfuse - QEMU disk images as raw files through FUSE", man.Stdout);
    }

    [Fact]
    public void BashCompletionOffersVerbsOptionsAndImageFiles()
    {
        using var t = new TempDir();
        foreach (string f in new[] { "vm.qed", "vm.qcow2", "notes.txt" })
        {
            File.WriteAllText(t[f], "");
        }

        t.Dir("images");
        string Complete(params string[] words)
        {
            string script = $"cd {Q(t.Path)}; source {Q(Repo.File("packaging/qedfuse.bash-completion"))}; "
                + $"COMP_WORDS=({string.Join(' ', words.Prepend(Env.Qedfuse).Select(Q))}); COMP_CWORD={words.Length}; _qedfuse; printf '%s\\n' \"${{COMPREPLY[@]}}\"";
            return Run.Exec("bash", ["--norc", "-c", script], TimeSpan.FromSeconds(60)).Ok().Stdout;
        }

        string[] verbs = Text.Lines(Complete(""));
        Assert.All(Verbs(), v => Assert.Contains(v, verbs));
        foreach (string verb in Verbs())
        {
            string[] offered = Text.Lines(Complete(verb, "-"));
            Assert.All(Options(verb), o => Assert.Contains(o, offered));
        }

        Assert.Equal(["images", "vm.qcow2", "vm.qed"], Text.Lines(Complete("info", "")).Order().ToArray());
        Assert.Equal(["json"], Text.Lines(Complete("check", "--output", "j")));
        Assert.Equal(["ro,allow_other"], Text.Lines(Complete("mount", "-o", "ro,al")));
    }

    /// <summary>The verbs `qedfuse --help` lists (aliases included), without help and version.</summary>
    private static List<string> Verbs() =>
        [.. Text.Lines(Env.Qf("--help").Stdout)
            .Select(l => VerbLine().Match(l))
            .Where(m => m.Success)
            .SelectMany(m => m.Groups[1].Value.Split(", "))
            .Where(v => v is not "help" and not "version")];

    /// <summary>The options `qedfuse VERB --help` lists, short and long, without --help and --version.</summary>
    private static List<string> Options(string verb) =>
        [.. Text.Lines(Env.Qf(verb, "--help").Stdout)
            .Select(l => OptionLine().Match(l))
            .Where(m => m.Success)
            .SelectMany(m => new[] { m.Groups[1].Value, m.Groups[2].Value })
            .Where(o => o.Length > 0 && o is not "--help" and not "--version")];

    [GeneratedRegex(@"^  ([a-z][a-z-]*(?:, [a-z][a-z-]*)*)  ")]
    private static partial Regex VerbLine();

    [GeneratedRegex(@"^  +(?:(-[A-Za-z]), )?(--[a-z][a-z0-9-]*)")]
    private static partial Regex OptionLine();
}
