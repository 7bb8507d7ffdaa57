using QedFuse.Block.Native;

namespace QedFuse.Block.Qed;

/// <summary>
/// The need-check feature bit in the on-disk header: "metadata may be inconsistent, check
/// before trusting it". Every change is written and synced before it returns, because the
/// bit is only worth something if it reaches the disk before the metadata writes it guards.
/// Safe to call from the flusher and the allocator at once.
/// </summary>
/// <remarks>
/// A header rewrite that fails leaves the bit's state on disk unknown: it is then taken as
/// set and the file as failed (<see cref="HostFile.Fail"/>), so nothing clears it again.
/// While <see cref="KnownCorrupt"/> only a check that finds the metadata clean may clear it.
/// </remarks>
internal sealed class NeedCheckFlag
{
    private readonly object _lock = new();
    private readonly HostFile _file;
    private QedHeader _header;

    public NeedCheckFlag(HostFile file, QedHeader header)
    {
        _file = file;
        _header = header;
    }

    /// <summary>The header as it is on disk (as far as we know: after a failed rewrite, with need-check set).</summary>
    public QedHeader Header
    {
        get
        {
            lock (_lock)
            {
                return _header;
            }
        }
    }

    public bool IsSet => Header.NeedCheck;

    /// <summary>
    /// The metadata is known (or not proven not) to hold corruptions: an image opened with
    /// need-check set and not repaired, or a check that left corruptions. Checkpoints leave the bit set then.
    /// </summary>
    public bool KnownCorrupt { get; set; }

    public void Set()
    {
        lock (_lock)
        {
            if (!_header.NeedCheck)
            {
                RewriteLocked(_header with { Features = _header.Features | QedHeader.FeatureNeedCheck });
            }
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            if (_header.NeedCheck)
            {
                RewriteLocked(_header with { Features = _header.Features & ~QedHeader.FeatureNeedCheck });
            }
        }
    }

    /// <summary>Writes the 64 header bytes (the backing file name after them is untouched) and syncs.</summary>
    public void Rewrite(QedHeader header)
    {
        lock (_lock)
        {
            RewriteLocked(header);
        }
    }

    private void RewriteLocked(QedHeader header)
    {
        Span<byte> bytes = stackalloc byte[QedHeader.Size];
        header.WriteTo(bytes);
        try
        {
            _file.Write(0, bytes, IoEvent.HeaderUpdate);
            _file.Sync();
        }
        catch (IOException e)
        {
            // Written or not, synced or not: from here on the bit counts as set, and the file as failed.
            _header = header with { Features = header.Features | QedHeader.FeatureNeedCheck };
            if (e is ImageFailedException)
            {
                throw;
            }

            string reason = $"header rewrite failed ({e.Message})";
            _file.Fail(reason);
            throw new ImageFailedException(_file.Path, reason, e.HResult is > 0 and < 4096 ? e.HResult : LibC.EIO);
        }

        _header = header;
    }
}
