using QedFuse.Block;
using Xunit.Abstractions;

namespace QedFuse.Reliability.Tests.Torture;

/// <summary>
/// Hundreds of in-process rounds: open an image with a <see cref="PowerLossSimulator"/> that
/// injects EIO, ENOSPC or a power loss at the Nth occurrence of one named I/O event, run the
/// random multi-threaded workload until it fires, then (after a power loss) let unsynced
/// sectors fall where they may, reopen with repair and verify every touched block against
/// the durability model; the checker and qemu-img check must find no corruption.
/// Rounds and seed: QEDFUSE_TORTURE_ROUNDS, QEDFUSE_TORTURE_SEED (make torture).
/// </summary>
public sealed class FaultInjectionTortureTests(ITestOutputHelper output)
{
    private static readonly (int Cluster, int Table, long Size)[] Geometries =
    [
        (4096, 1, 16L << 20),
        (4096, 2, 32L << 20),
        (65536, 1, 64L << 20),
        (65536, 4, 64L << 20),
    ];

    /// <summary>The events a QED image has (qcow2's refcount structures are not among them).</summary>
    private static readonly IoEvent[] Events = Enum.GetValues<IoEvent>()
        .Where(e => e is not (IoEvent.RefblockAlloc or IoEvent.RefblockUpdate or IoEvent.ReftableUpdate or IoEvent.ReftableGrow)).ToArray();

    [Fact]
    public void FaultsAndPowerLossNeverCorruptOrLoseFsyncedData()
    {
        int rounds = Env("QEDFUSE_TORTURE_ROUNDS", 200);
        int seed0 = Env("QEDFUSE_TORTURE_SEED", 1);
        var fired = new Dictionary<string, int>();
        for (int r = 0; r < rounds; r++)
        {
            int seed = seed0 + r;
            try
            {
                string what = RunRound(seed);
                fired[what] = fired.GetValueOrDefault(what) + 1;
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"fault-injection round with seed {seed} failed (rerun: QEDFUSE_TORTURE_SEED={seed} QEDFUSE_TORTURE_ROUNDS=1): {e}");
            }
        }

        output.WriteLine(string.Join("\n", fired.OrderBy(kv => kv.Key).Select(kv => $"{kv.Value,4} x {kv.Key}")));
        Assert.True(fired.Keys.Count(k => k.EndsWith(" Crash")) >= Math.Min(rounds / 20, Events.Length),
            "too few distinct power-loss points were reached: the workload no longer exercises them");
    }

    private string RunRound(int seed)
    {
        var rng = new Random(seed);
        var (cluster, table, size) = Geometries[rng.Next(Geometries.Length)];
        bool withBacking = rng.Next(2) == 0;
        IoEvent target = Events[rng.Next(Events.Length)];
        var fault = rng.Next(10) switch
        {
            < 6 => PowerLossSimulator.Fault.Crash,
            < 8 => PowerLossSimulator.Fault.Eio,
            _ => PowerLossSimulator.Fault.Enospc,
        };
        int occurrence = 1 + rng.Next(target == IoEvent.DataWrite ? 40 : 3);

        string dir = Directory.CreateTempSubdirectory("qedfuse-fault-").FullName;
        string path = Path.Combine(dir, "disk.qed");
        try
        {
            byte[] backing = [];
            if (withBacking)
            {
                backing = new byte[4 << 20];
                rng.NextBytes(backing);
                File.WriteAllBytes(Path.Combine(dir, "base.raw"), backing);
            }

            ImageOpener.Create(path, "qed", new ImageCreateOptions
            {
                Size = size,
                BackingFile = withBacking ? "base.raw" : null,
                BackingFormat = withBacking ? "raw" : null,
                FormatOptions = new Dictionary<string, string> { ["cluster_size"] = $"{cluster}", ["table_size"] = $"{table}" },
            });

            var sim = new PowerLossSimulator(seed, target, occurrence, fault);
            var model = new DurabilityModel(b => Initial(backing, b));
            IBlockImage image = ImageOpener.Open(path, new ImageOpenOptions { HostFileHook = sim });
            var workload = new TortureWorkload(new EngineDisk(image, rng.Next()), model, (long)table * cluster / 8 * cluster, seed);
            workload.Run(2, CancellationToken.None, maxOpsPerThread: 50);
            try
            {
                image.Dispose();
                if (!sim.Crashed)
                {
                    // A clean close after a one-shot error: everything acknowledged must be there.
                    model.CompleteFsync(model.BeginFsync());
                }
            }
            catch (IOException)
            {
                // The fault (or the power loss) hit the close itself.
            }

            if (sim.Crashed)
            {
                sim.LoseUnsyncedWrites(path);
            }

            using (IBlockImage reopened = ImageOpener.Open(path, new ImageOpenOptions()))
            {
                byte[] buf = new byte[DurabilityModel.BlockSize];
                var failures = new List<string>();
                foreach (long block in model.TouchedBlocks)
                {
                    reopened.Read(block * DurabilityModel.BlockSize, buf);
                    if (model.Verify(block, buf) is { } problem)
                    {
                        failures.Add(problem);
                    }
                }

                Assert.True(failures.Count == 0,
                    $"{cluster}/{table} backing={withBacking} {fault} at {target} #{occurrence} (fired={sim.Fired}): {failures.Count} blocks wrong, e.g.\n{string.Join("\n", failures.Take(5))}");
                CheckResult check = reopened.Check(CheckRepair.None);
                Assert.True(check.Corruptions == 0 && check.CheckErrors == 0, $"qedfuse check after {fault} at {target}: {string.Join("; ", check.Messages)}");
            }

            if (table > 1)
            {
                var (exit, stdout, stderr) = TortureTools.Run("qemu-img", "check", path);
                Assert.True(exit is 0 or 3, $"qemu-img check after {fault} at {target}: exit {exit}: {stdout}{stderr}");
            }

            return sim.Fired ? $"{target} {fault}" : "(fault not reached)";
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static byte[] Initial(byte[] backing, long block)
    {
        var b = new byte[DurabilityModel.BlockSize];
        long offset = block * DurabilityModel.BlockSize;
        if (offset < backing.Length)
        {
            backing.AsSpan((int)offset, (int)Math.Min(b.Length, backing.Length - offset)).CopyTo(b);
        }

        return b;
    }

    private static int Env(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : fallback;

    /// <summary>An engine image as a torture disk; zeroing alternates between unmap and write-zeroes.</summary>
    private sealed class EngineDisk(IBlockImage image, int seed) : ITortureDisk
    {
        private readonly Random _rng = new(seed);

        public long Size => image.VirtualSize;

        public void Write(long offset, ReadOnlySpan<byte> data) => image.Write(offset, data);

        public void Zero(long offset, long length)
        {
            bool unmap;
            lock (_rng)
            {
                unmap = _rng.Next(2) == 0;
            }

            image.WriteZeroes(offset, length, unmap);
        }

        public void Fsync() => image.Flush();
    }
}
