using System.Buffers;
using System.Collections.Concurrent;

namespace QedFuse.Block.Tools;

/// <summary>
/// The copy loop under convert and commit: ranges cut into chunks, several chunks read in
/// parallel, writes in offset order (unless out of order is allowed), and only what must be
/// written: runs the source knows to be zeros are skipped without reading, aligned runs of
/// zero bytes (or, against a baseline, of unchanged bytes) are not written.
/// </summary>
public static class ImageCopier
{
    private const long ChunkTarget = 1 << 20;

    private enum Action
    {
        Skip,
        Write,
        Zero,
    }

    private readonly record struct Chunk(long Sequence, long Start, int Length, bool KnownZero);

    public static void Copy(IBlockImage source, IBlockImage target, IEnumerable<CopyRange> ranges, CopySettings settings, CancellationToken cancel)
    {
        int workers = Math.Clamp(settings.Parallelism, 1, 64);
        long granule = settings.SparseSize;
        // A whole number of sparse granules per chunk, chunks aligned to their size: granules stay aligned.
        long chunkBytes = granule > 0 ? (ChunkTarget + granule - 1) / granule * granule : ChunkTarget;

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        using var queue = new BlockingCollection<Chunk>(workers * 2);
        var turns = new WriteTurns(!settings.OutOfOrder);
        Exception? failure = null;

        void Fail(Exception e)
        {
            Interlocked.CompareExchange(ref failure, e, null);
            turns.Abort();
            stop.Cancel();
        }

        Task[] tasks = Enumerable.Range(0, workers).Select(_ => Task.Factory.StartNew(() =>
        {
            byte[] data = ArrayPool<byte>.Shared.Rent((int)chunkBytes);
            byte[] baseline = ArrayPool<byte>.Shared.Rent((int)chunkBytes);
            try
            {
                foreach (Chunk c in queue.GetConsumingEnumerable(stop.Token))
                {
                    settings.Rate.Take(c.Length, stop.Token);
                    Process(source, target, c, settings, turns, data, baseline, stop.Token);
                    settings.Progress?.Add(c.Length);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                Fail(e);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(data);
                ArrayPool<byte>.Shared.Return(baseline);
            }
        }, stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        try
        {
            long sequence = 0;
            foreach (CopyRange r in ranges)
            {
                for (long at = r.Start, end = r.Start + r.Length; at < end;)
                {
                    long next = Math.Min(end, (at / chunkBytes + 1) * chunkBytes);
                    queue.Add(new Chunk(sequence++, at, (int)(next - at), r.KnownZero), stop.Token);
                    at = next;
                }
            }

            queue.CompleteAdding();
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Fail(e);
        }

        Task.WaitAll(tasks);
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }

        cancel.ThrowIfCancellationRequested();
    }

    private static void Process(IBlockImage source, IBlockImage target, Chunk c, CopySettings s, WriteTurns turns,
        byte[] data, byte[] baseline, CancellationToken cancel)
    {
        Span<byte> buf = data.AsSpan(0, c.Length);
        Span<byte> old = baseline.AsSpan(0, c.Length);
        if (s.Baseline is not null)
        {
            BackingChain.Read(s.Baseline, c.Start, old);
        }

        if (c.KnownZero)
        {
            Action action = s.SparseSize == 0 ? Action.Write
                : s.Baseline is not null ? (old.IndexOfAnyExcept((byte)0) < 0 ? Action.Skip : Action.Zero)
                : s.TargetReadsZero ? Action.Skip
                : Action.Zero;
            buf.Clear();
            turns.WaitFor(c.Sequence, cancel);
            Apply(target, action, c.Start, buf);
            turns.Done();
            return;
        }

        source.Read(c.Start, buf);
        turns.WaitFor(c.Sequence, cancel);
        if (s.SparseSize == 0)
        {
            target.Write(c.Start, buf);
            turns.Done();
            return;
        }

        // Granules aligned to the sparse size; runs of granules with one action become one request.
        int granule = (int)s.SparseSize;
        int runStart = 0;
        Action runAction = Action.Skip;
        for (int at = 0; at < c.Length;)
        {
            int next = (int)Math.Min(c.Length, ((c.Start + at) / granule + 1) * granule - c.Start);
            Span<byte> piece = buf[at..next];
            Action action = s.Baseline is not null ? (piece.SequenceEqual(old[at..next]) ? Action.Skip : Action.Write)
                : piece.IndexOfAnyExcept((byte)0) >= 0 ? Action.Write
                : s.TargetReadsZero ? Action.Skip
                : Action.Zero;
            if (action != runAction)
            {
                Apply(target, runAction, c.Start + runStart, buf[runStart..at]);
                runStart = at;
                runAction = action;
            }

            at = next;
        }

        Apply(target, runAction, c.Start + runStart, buf[runStart..]);
        turns.Done();
    }

    private static void Apply(IBlockImage target, Action action, long offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        switch (action)
        {
            case Action.Write:
                target.Write(offset, data);
                break;
            case Action.Zero:
                target.WriteZeroes(offset, data.Length, unmap: true);
                break;
        }
    }
}
