using System.Diagnostics;
using QedFuse.Reliability.Tests.Support;
using Xunit.Abstractions;

namespace QedFuse.Reliability.Tests.Fuzz;

/// <summary>
/// Fuzzed QED images against the block engine. Bounded by count and time so that it fits in
/// make test; make fuzz runs many more from a random seed. Environment:
/// QEDFUSE_FUZZ_CASES (default 3000), QEDFUSE_FUZZ_SECONDS (default 30), QEDFUSE_FUZZ_SEED
/// (default 1), QEDFUSE_FUZZ_REPLAY (one case seed: run just that case).
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(10);

    [Fact]
    public void Seed_images_are_valid_and_pass_every_check()
    {
        using var dir = new TempDir("qedfuse-fuzz-", memory: true);
        var seeds = SeedCorpus.Build(dir.Path);
        foreach (SeedImage seed in seeds)
        {
            string copy = dir[$"seed-{seed.Name}.qed"];
            File.WriteAllBytes(copy, seed.Bytes);
            var problems = new List<string>();
            var stats = new FuzzCase.Stats();
            Assert.True(FuzzCase.Exercise(copy, readOnly: true, new Random(1), problems, stats, out _), $"seed {seed.Name} did not open");
            Assert.True(FuzzCase.Exercise(copy, readOnly: false, new Random(1), problems, stats, out var repair), $"seed {seed.Name} did not open rw");
            Assert.Empty(problems);
            Assert.Equal(0, stats.CorruptReads);
            Assert.Equal(0, repair!.ExitCode);
        }
    }

    [Fact]
    public void Fuzzed_images_fail_cleanly()
    {
        int cases = EnvInt("QEDFUSE_FUZZ_CASES", 3000);
        double seconds = EnvInt("QEDFUSE_FUZZ_SECONDS", 25);
        int baseSeed = EnvInt("QEDFUSE_FUZZ_SEED", 1);
        int? replay = Environment.GetEnvironmentVariable("QEDFUSE_FUZZ_REPLAY") is { Length: > 0 } r ? int.Parse(r) : null;

        using var dir = new TempDir("qedfuse-fuzz-", memory: true);
        var seeds = SeedCorpus.Build(dir.Path);
        var baseHashes = Directory.GetFiles(dir.Path, "base.*").ToDictionary(f => f, f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));
        var stats = new FuzzCase.Stats();
        var failures = new List<string>();
        int next = 0;
        bool stop = false;
        var clock = Stopwatch.StartNew();
        int workers = replay is null ? Math.Clamp(Environment.ProcessorCount, 1, 4) : 1;
        var current = new (int Seed, long StartedMs)[workers];
        var threads = new List<Thread>();
        for (int w = 0; w < workers; w++)
        {
            int worker = w;
            current[worker] = (0, -1);
            var t = new Thread(() =>
            {
                while (!Volatile.Read(ref stop))
                {
                    int i = Interlocked.Increment(ref next) - 1;
                    if (replay is not null ? i > 0 : i >= cases || clock.Elapsed.TotalSeconds > seconds)
                    {
                        break;
                    }

                    int caseSeed = replay ?? CaseSeed(baseSeed, i);
                    Volatile.Write(ref current[worker].Seed, caseSeed);
                    Volatile.Write(ref current[worker].StartedMs, clock.ElapsedMilliseconds);
                    List<string> problems;
                    try
                    {
                        problems = FuzzCase.Run(seeds, caseSeed, dir.Path, worker, stats);
                    }
                    catch (Exception e)
                    {
                        problems = [$"case seed {caseSeed}: harness failure {FuzzCase.Describe(e)}"];
                    }

                    Volatile.Write(ref current[worker].StartedMs, -1);
                    if (problems.Count > 0)
                    {
                        lock (failures)
                        {
                            failures.Add(string.Join("\n  ", problems));
                            if (failures.Count >= 5)
                            {
                                Volatile.Write(ref stop, true);
                            }
                        }
                    }
                }
            })
            { IsBackground = true, Name = $"fuzz-{w}" };
            threads.Add(t);
            t.Start();
        }

        // Watchdog: a case that runs past its timeout is a hang; report it and stop waiting.
        while (threads.Any(t => t.IsAlive))
        {
            threads.First(t => t.IsAlive).Join(100);
            for (int w = 0; w < workers; w++)
            {
                long started = Volatile.Read(ref current[w].StartedMs);
                if (started >= 0 && clock.ElapsedMilliseconds - started > CaseTimeout.TotalMilliseconds)
                {
                    lock (failures)
                    {
                        failures.Add($"case seed {current[w].Seed}: HANG: still running after {CaseTimeout.TotalSeconds} s");
                    }

                    Volatile.Write(ref stop, true);
                    threads[w] = new Thread(() => { }); // abandon the hung worker (a background thread)
                }
            }
        }

        foreach (var (file, hash) in baseHashes)
        {
            Assert.Equal(hash, Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file))));
        }

        string summary = $"fuzz: seed {baseSeed}, {stats.Cases} cases in {clock.Elapsed.TotalSeconds:F1} s on {workers} threads: "
            + $"read-only opens {stats.OpenedRo} accepted / {stats.RejectedRo} rejected, read-write opens {stats.OpenedRw}, "
            + $"{stats.CorruptReads} failed reads, {stats.Repaired} fully repaired";
        output.WriteLine(summary);
        Console.WriteLine(summary);
        if (failures.Count > 0)
        {
            foreach (string f in failures)
            {
                foreach (string line in f.Split('\n'))
                {
                    Console.WriteLine($"FUZZ FAILURE: {line}");
                }
            }

            Assert.Fail($"{failures.Count} failing fuzz case(s) (QEDFUSE_FUZZ_SEED={baseSeed}; replay one with QEDFUSE_FUZZ_REPLAY=<case seed>):\n"
                + string.Join("\n", failures));
        }

        if (replay is null)
        {
            Assert.True(stats.Cases >= Math.Min(cases, 200), $"only {stats.Cases} cases ran");
            Assert.True(stats.OpenedRo > stats.Cases / 5, "too few mutated images opened: the fuzzer is not reaching the tables");
        }
    }

    public static int CaseSeed(int baseSeed, int i) => unchecked((int)((uint)baseSeed * 2654435761u + (uint)i * 40503u));

    private static int EnvInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : fallback;
}
