namespace QedFuse.Reliability.Tests.Torture;

/// <summary>
/// A random mix of block writes (1..8 blocks), zero/punch ranges and fsyncs from several
/// threads, recorded in a <see cref="DurabilityModel"/>. The address space is a few windows
/// placed where bugs live: the start, across an L2 table boundary, the end of the disk, and
/// one at random. Threads own interleaved 32 KiB stripes (by absolute stripe number), so byte
/// ranges never overlap while two threads still allocate the same 64 KiB cluster at once.
/// </summary>
internal sealed class TortureWorkload
{
    private const int StripeBlocks = 8;
    private const int WindowBlocks = 256; // 1 MiB

    private readonly ITortureDisk _disk;
    private readonly DurabilityModel _model;
    private readonly long[] _windowStarts;
    private readonly int _seed;

    public TortureWorkload(ITortureDisk disk, DurabilityModel model, long l2Span, int seed)
    {
        _disk = disk;
        _model = model;
        _seed = seed;
        long blocks = disk.Size / DurabilityModel.BlockSize;
        var rng = new Random(seed);
        long span = l2Span / DurabilityModel.BlockSize;
        long boundary = Math.Min(span, blocks - WindowBlocks) - WindowBlocks / 2;
        _windowStarts = new[] { 0L, Math.Max(0, boundary), blocks - WindowBlocks, rng.NextInt64(0, blocks - WindowBlocks) }
            .Select(b => b / StripeBlocks * StripeBlocks).Distinct().ToArray();
    }

    public int Operations;

    /// <summary>Runs <paramref name="threads"/> writers until <paramref name="stop"/> or until the disk fails under them.</summary>
    public void Run(int threads, CancellationToken stop, int maxOpsPerThread = int.MaxValue)
    {
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() => Worker(t, threads, stop, maxOpsPerThread))).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
    }

    private void Worker(int thread, int threads, CancellationToken stop, int maxOps)
    {
        var rng = new Random(_seed * 31 + thread);
        byte[] buf = new byte[StripeBlocks * DurabilityModel.BlockSize];
        for (int op = 0; op < maxOps && !stop.IsCancellationRequested; op++)
        {
            // Ownership goes by absolute stripe number, so that windows that overlap (small disks)
            // still never give one block to two threads.
            long firstStripe = _windowStarts[rng.Next(_windowStarts.Length)] / StripeBlocks;
            const int stripesPerWindow = WindowBlocks / StripeBlocks;
            long stripe = firstStripe + rng.Next(stripesPerWindow);
            stripe += ((thread - stripe % threads) + threads) % threads;
            if (stripe >= firstStripe + stripesPerWindow)
            {
                stripe -= threads;
            }

            long first = stripe * StripeBlocks;
            int skip = rng.Next(StripeBlocks);
            int count = 1 + rng.Next(StripeBlocks - skip);
            first += skip;
            int kind = rng.Next(100);
            try
            {
                if (kind < 12)
                {
                    long start = _model.BeginFsync();
                    _disk.Fsync();
                    _model.CompleteFsync(start);
                }
                else
                {
                    bool zero = kind < 27;
                    var w = _model.Begin(first, count, zero);
                    if (zero)
                    {
                        _disk.Zero(first * DurabilityModel.BlockSize, (long)count * DurabilityModel.BlockSize);
                    }
                    else
                    {
                        for (int i = 0; i < count; i++)
                        {
                            DurabilityModel.Content(w, first + i).CopyTo(buf, i * DurabilityModel.BlockSize);
                        }

                        _disk.Write(first * DurabilityModel.BlockSize, buf.AsSpan(0, count * DurabilityModel.BlockSize));
                    }

                    _model.Complete(w);
                }

                Interlocked.Increment(ref Operations);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                return; // the disk died under us (the crash); the write stays "maybe"
            }
        }
    }
}
