namespace QedFuse.Block.Qed;

/// <summary>
/// The need-check feature bit in the on-disk header: "metadata may be inconsistent, check
/// before trusting it". Every change is written and synced before it returns, because the
/// bit is only worth something if it reaches the disk before the metadata writes it guards.
/// </summary>
internal sealed class NeedCheckFlag
{
    private readonly HostFile _file;

    public NeedCheckFlag(HostFile file, QedHeader header)
    {
        _file = file;
        Header = header;
    }

    /// <summary>The header as it is on disk.</summary>
    public QedHeader Header { get; private set; }

    public bool IsSet => Header.NeedCheck;

    public void Set()
    {
        if (!IsSet)
        {
            Rewrite(Header with { Features = Header.Features | QedHeader.FeatureNeedCheck });
        }
    }

    public void Clear()
    {
        if (IsSet)
        {
            Rewrite(Header with { Features = Header.Features & ~QedHeader.FeatureNeedCheck });
        }
    }

    /// <summary>Writes the 64 header bytes (the backing file name after them is untouched) and syncs.</summary>
    public void Rewrite(QedHeader header)
    {
        Span<byte> bytes = stackalloc byte[QedHeader.Size];
        header.WriteTo(bytes);
        _file.Write(0, bytes, IoEvent.HeaderUpdate);
        _file.Sync();
        Header = header;
    }
}
