using System.Security.Cryptography;
using QedFuse.Block;

namespace QedFuse.Reliability.Tests.Fuzz;

/// <summary>
/// One fuzz case: open the mutated image read-only and read-write (on a copy), drive every
/// read-side entry point, repair, write, and record anything that breaks the contract:
/// an exception that is not an IOException (BadImage/CorruptImage included), a rejection that
/// is not one line naming the file, an unbounded allocation, a read-only open that changed
/// the file, data that does not read back, a repaired image that still checks corrupt.
/// </summary>
public static class FuzzCase
{
    public const long AllocationBound = 64L << 20;

    private const int Chunk = 1 << 20;
    private const long WholeReadLimit = 64L << 20;
    private const int MaxWalkSteps = 8_000_000;

    [ThreadStatic]
    private static byte[]? t_buffer;

    public sealed class Stats
    {
        public int Cases;
        public int RejectedRo;
        public int OpenedRo;
        public int OpenedRw;
        public int CorruptReads;
        public int Repaired;
    }

    public static int SeedIndex(int caseSeed, int seeds) => (int)((uint)caseSeed % (uint)seeds);

    /// <summary>Runs one case; returns the problems found (empty: passed).</summary>
    public static List<string> Run(IReadOnlyList<SeedImage> seeds, int caseSeed, string dir, int worker, Stats stats)
    {
        SeedImage seed = seeds[SeedIndex(caseSeed, seeds.Count)];
        var (bytes, steps) = Mutator.Mutate(seed, caseSeed);
        var problems = new List<string>();
        Interlocked.Increment(ref stats.Cases);

        // Read-only: must not change a byte.
        string ro = Path.Combine(dir, $"fuzz-w{worker}.qed");
        File.WriteAllBytes(ro, bytes);
        byte[] before = SHA256.HashData(bytes);
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        var rng = new Random(caseSeed ^ 0x5eed);
        bool opened = Exercise(ro, readOnly: true, rng, problems, stats, out _);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - a0;
        if (opened) Interlocked.Increment(ref stats.OpenedRo); else Interlocked.Increment(ref stats.RejectedRo);
        if (allocated > AllocationBound)
        {
            problems.Add($"read-only pass allocated {allocated >> 20} MiB (bound {AllocationBound >> 20} MiB)");
        }

        if (!SHA256.HashData(File.ReadAllBytes(ro)).AsSpan().SequenceEqual(before))
        {
            problems.Add("a read-only open changed the image file");
        }

        // Read-write on a copy: repair, read, write, close; then the repaired image must check clean.
        string rw = Path.Combine(dir, $"fuzz-w{worker}-rw.qed");
        File.WriteAllBytes(rw, bytes);
        a0 = GC.GetAllocatedBytesForCurrentThread();
        bool openedRw = Exercise(rw, readOnly: false, rng, problems, stats, out CheckResult? repair);
        allocated = GC.GetAllocatedBytesForCurrentThread() - a0;
        if (openedRw)
        {
            Interlocked.Increment(ref stats.OpenedRw);
        }

        if (allocated > AllocationBound)
        {
            problems.Add($"read-write pass allocated {allocated >> 20} MiB (bound {AllocationBound >> 20} MiB)");
        }

        if (repair is { Corruptions: 0, CheckErrors: 0, Supported: true })
        {
            Interlocked.Increment(ref stats.Repaired);
            try
            {
                using IBlockImage again = ImageOpener.Open(rw, new ImageOpenOptions { ReadOnly = true });
                CheckResult after = again.Check(CheckRepair.None);
                if (after.Corruptions != 0 || after.CheckErrors != 0)
                {
                    problems.Add($"after check -r all reported no corruption left, a repair/write/close cycle left {after.Corruptions} corruptions, "
                        + $"{after.CheckErrors} check errors: {string.Join("; ", after.Messages)}");
                }
            }
            catch (Exception e)
            {
                problems.Add($"reopening the repaired image failed: {Describe(e)}");
            }
        }

        if (problems.Count > 0)
        {
            problems.Insert(0, $"case seed {caseSeed} (seed image {seed.Name}; mutations: {string.Join(", ", steps)})");
        }

        return problems;
    }

    public static bool IsAllowed(Exception e) => e is IOException; // BadImageException and CorruptImageException are IOExceptions

    public static string Describe(Exception e) =>
        $"{e.GetType().FullName}: {e.Message}\n{string.Join("\n", (e.StackTrace ?? "").Split('\n').Take(8))}";

    /// <summary>Opens and exercises one image; false when the open was (properly) rejected.</summary>
    public static bool Exercise(string path, bool readOnly, Random rng, List<string> problems, Stats stats, out CheckResult? repair)
    {
        repair = null;
        string mode = readOnly ? "read-only" : "read-write";
        IBlockImage img;
        try
        {
            img = ImageOpener.Open(path, new ImageOpenOptions { ReadOnly = readOnly, CacheBytes = 4 << 20, Log = _ => { } });
        }
        catch (Exception e) when (IsAllowed(e))
        {
            // Names read from a hostile header appear in messages with control characters escaped.
            string named = e is BadImageException bad ? BadImageException.OneLine(bad.ImagePath) : path;
            if (e.Message.Contains('\n') || e.Message.Contains('\r'))
            {
                problems.Add($"{mode} open rejection is not one line: {e.Message.ReplaceLineEndings("\\n")}");
            }

            if (!e.Message.Contains(path, StringComparison.Ordinal) && !(named != path && e.Message.Contains(named, StringComparison.Ordinal)
                    && Path.GetDirectoryName(Path.GetFullPath(named)) == Path.GetDirectoryName(path)))
            {
                problems.Add($"{mode} open rejection does not name the file: {e.Message.ReplaceLineEndings("\\n")}");
            }

            return false;
        }
        catch (Exception e)
        {
            problems.Add($"{mode} open threw {Describe(e)}");
            return false;
        }

        try
        {
            if (!readOnly)
            {
                CheckResult? r = null;
                Step(problems, "check -r all", () => r = img.Check(CheckRepair.All));
                repair = r;
            }

            List<long> interesting = [];
            Step(problems, $"{mode} allocation walk", () => Walk(img, interesting, problems));
            Step(problems, $"{mode} read", () => ReadAll(img, interesting, rng, problems, stats));
            Step(problems, $"{mode} info", () => img.GetInfo());
            if (readOnly)
            {
                Step(problems, "check", () => img.Check(CheckRepair.None));
            }
            else
            {
                Step(problems, "write and read back", () => WriteAndReadBack(img, rng, problems));
                Step(problems, "flush", img.Flush);
            }
        }
        finally
        {
            Step(problems, $"{mode} close", img.Dispose);
        }

        return true;
    }

    private static void Step(List<string> problems, string what, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (IsAllowed(e))
        {
        }
        catch (Exception e)
        {
            problems.Add($"{what} threw {Describe(e)}");
        }
    }

    private static void Walk(IBlockImage img, List<long> interesting, List<string> problems)
    {
        long size = img.VirtualSize;
        long cluster = img.GetInfo().ClusterSize is > 0 and long c ? c : 4096;
        int failures = 0;
        long offset = 0;
        for (int steps = 0; offset < size; steps++)
        {
            if (steps > MaxWalkSteps)
            {
                problems.Add($"allocation walk did not finish in {MaxWalkSteps} steps (at {offset} of {size})");
                return;
            }

            Allocation a;
            try
            {
                a = img.GetAllocation(offset, size - offset);
                failures = 0;
            }
            catch (Exception e) when (IsAllowed(e))
            {
                // Skip ahead, further each time in a row, to get past a corrupt table quickly.
                long step = cluster << Math.Min(failures++, 40);
                offset = Math.Min(size, (offset / cluster * cluster) + step);
                continue;
            }

            if (a.Length <= 0 || a.Length > size - offset)
            {
                problems.Add($"GetAllocation({offset}, {size - offset}) returned a run of length {a.Length}");
                return;
            }

            if (a.State == AllocationState.Data && a.HostOffset < 0)
            {
                problems.Add($"GetAllocation({offset}) returned a data run without a host offset");
                return;
            }

            if (a.State != AllocationState.Unallocated && interesting.Count < 64)
            {
                interesting.Add(offset);
            }

            offset += a.Length;
        }
    }

    private static void ReadAll(IBlockImage img, List<long> interesting, Random rng, List<string> problems, Stats stats)
    {
        byte[] buf = t_buffer ??= new byte[Chunk];
        long size = img.VirtualSize;
        IEnumerable<long> starts = size <= WholeReadLimit
            ? Enumerable.Range(0, (int)((size + Chunk - 1) / Chunk)).Select(i => (long)i * Chunk)
            : [0, 1L * Chunk, 2L * Chunk, size - 1, size - Chunk, .. interesting,
               .. Enumerable.Range(0, 16).Select(_ => rng.NextInt64(size) & ~511L)];
        foreach (long start in starts)
        {
            long at = Math.Clamp(start, 0, size - 1);
            int n = (int)Math.Min(Chunk, size - at);
            try
            {
                img.Read(at, buf.AsSpan(0, n));
            }
            catch (Exception e) when (IsAllowed(e))
            {
                Interlocked.Increment(ref stats.CorruptReads);
            }
            catch (Exception e)
            {
                problems.Add($"Read({at}, {n}) threw {Describe(e)}");
                return;
            }
        }
    }

    private static void WriteAndReadBack(IBlockImage img, Random rng, List<string> problems)
    {
        long size = img.VirtualSize;
        int n = (int)Math.Min(rng.Next(3) switch { 0 => 512, 1 => 4096, _ => 70_000 }, size);
        long at = rng.NextInt64(size - n + 1) & ~511L;
        var data = new byte[n];
        rng.NextBytes(data);
        img.Write(at, data);
        var back = new byte[n];
        img.Read(at, back);
        if (!back.AsSpan().SequenceEqual(data))
        {
            problems.Add($"data written at {at} (+{n}) did not read back");
            return;
        }

        // Then zero a piece of it (sector-aligned, possibly up to the end of the image).
        int zeroAt = rng.Next(n + 1) & ~511;
        int zeroLength = rng.Next(n - zeroAt + 1);
        bool unmap = rng.Next(2) == 0;
        img.WriteZeroes(at + zeroAt, zeroLength, unmap);
        data.AsSpan(zeroAt, zeroLength).Clear();
        img.Read(at, back);
        if (!back.AsSpan().SequenceEqual(data))
        {
            problems.Add($"zeroes written at {at + zeroAt} (+{zeroLength}, unmap {unmap}) did not read back");
        }
    }
}
