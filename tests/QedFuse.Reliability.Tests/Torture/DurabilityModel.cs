using System.Buffers.Binary;

namespace QedFuse.Reliability.Tests.Torture;

/// <summary>
/// What a crashed disk may legally contain. Every write covers whole blocks and fills each
/// block with a pattern that names the write, so a block's content tells which write put it
/// there. A write is durable once an fsync that started after it completed has returned
/// success. After a crash each block must hold its last durable value, or the value of a
/// later write (completed or not), sector by sector: anything else (a lost acknowledged
/// write, a foreign value, garbage from another cluster) is a violation.
/// </summary>
internal sealed class DurabilityModel
{
    public const int BlockSize = 4096;
    public const int SectorSize = 512;

    private readonly object _gate = new();
    private readonly Dictionary<long, List<Write>> _history = [];
    private readonly Func<long, byte[]> _initialBlock;
    private readonly List<(long Start, long End)> _fsyncs = [];
    private long _clock;
    private long _nextId = 1;

    public DurabilityModel(Func<long, byte[]> initialBlock) => _initialBlock = initialBlock;

    /// <summary>Every block some write touched (the only ones that can have changed).</summary>
    public IReadOnlyCollection<long> TouchedBlocks
    {
        get
        {
            lock (_gate)
            {
                return _history.Keys.Order().ToList();
            }
        }
    }

    /// <summary>A write (or, with <paramref name="zero"/>, a punch/zero) of blocks [first, first+count).</summary>
    public Write Begin(long first, int count, bool zero)
    {
        lock (_gate)
        {
            var w = new Write(_nextId++, first, count, zero, ++_clock);
            for (long b = first; b < first + count; b++)
            {
                if (!_history.TryGetValue(b, out var list))
                {
                    _history[b] = list = [];
                }

                list.Add(w);
            }

            return w;
        }
    }

    public void Complete(Write w)
    {
        lock (_gate)
        {
            w.CompletedAt = ++_clock;
        }
    }

    public long BeginFsync()
    {
        lock (_gate)
        {
            return ++_clock;
        }
    }

    public void CompleteFsync(long start)
    {
        lock (_gate)
        {
            _fsyncs.Add((start, ++_clock));
        }
    }

    /// <summary>The bytes write <paramref name="w"/> puts in block <paramref name="block"/>.</summary>
    public static byte[] Content(Write w, long block)
    {
        var buf = new byte[BlockSize];
        if (w.Zero)
        {
            return buf;
        }

        ulong x = (ulong)w.Id * 0x9E3779B97F4A7C15UL ^ (ulong)block * 0xC2B2AE3D27D4EB4FUL;
        for (int i = 0; i < BlockSize; i += 8)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            BinaryPrimitives.WriteUInt64LittleEndian(buf.AsSpan(i), x);
        }

        BinaryPrimitives.WriteInt64LittleEndian(buf, w.Id);
        BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(8), block);
        return buf;
    }

    /// <summary>Checks one block read back after the crash; null when legal, else what is wrong.</summary>
    public string? Verify(long block, ReadOnlySpan<byte> actual)
    {
        List<Write> h;
        long lastFsyncStart;
        lock (_gate)
        {
            h = _history.TryGetValue(block, out var list) ? list : [];
            lastFsyncStart = _fsyncs.Count == 0 ? 0 : _fsyncs.Max(f => f.Start);
        }

        // Durable: completed before the start of an fsync that returned success.
        int durable = -1;
        for (int i = 0; i < h.Count; i++)
        {
            if (h[i].CompletedAt is { } c && c < lastFsyncStart)
            {
                durable = i;
            }
        }

        // Sectors are the unit a disk writes atomically: a write that was not durable may have
        // reached the disk in part, so each sector must hold that sector of some legal version.
        var legal = new List<byte[]>();
        if (durable < 0)
        {
            legal.Add(_initialBlock(block));
        }

        for (int i = Math.Max(durable, 0); i < h.Count; i++)
        {
            legal.Add(Content(h[i], block));
        }

        bool allSectorsLegal = true;
        for (int s = 0; s < BlockSize; s += SectorSize)
        {
            bool matched = false;
            foreach (byte[] version in legal)
            {
                matched |= actual.Slice(s, SectorSize).SequenceEqual(version.AsSpan(s, SectorSize));
            }

            if (!matched)
            {
                allSectorsLegal = false;
                break;
            }
        }

        if (allSectorsLegal)
        {
            return null;
        }

        string expected = durable < 0 ? "its initial value" : $"write #{h[durable].Id} (durable)";
        long foundId = BinaryPrimitives.ReadInt64LittleEndian(actual);
        long foundBlock = BinaryPrimitives.ReadInt64LittleEndian(actual[8..]);
        string found = actual.IndexOfAnyExcept((byte)0) < 0 ? "zeros" : $"bytes starting like write #{foundId} of block {foundBlock}";
        return $"block {block} (offset {block * BlockSize}): expected {expected} or one of {h.Count - Math.Max(durable, 0) - (durable < 0 ? 0 : 1)} later writes, found {found}";
    }

    internal sealed class Write(long id, long first, int count, bool zero, long issuedAt)
    {
        public long Id { get; } = id;
        public long First { get; } = first;
        public int Count { get; } = count;
        public bool Zero { get; } = zero;
        public long IssuedAt { get; } = issuedAt;
        public long? CompletedAt { get; set; }
    }
}
