using QedFuse.Block.Metadata;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// Reads refcounts as stored on disk, through the refcount table and one cached refcount
/// block: what the check compares its own counts with. Not thread-safe.
/// </summary>
internal sealed class StoredRefcounts
{
    private readonly HostFile _file;
    private readonly Qcow2Geometry _geo;
    private readonly byte[] _block;
    private long _blockOffset = -1;

    public StoredRefcounts(HostFile file, Qcow2Layout layout)
    {
        _file = file;
        _geo = layout.Geometry;
        Table = new ulong[((long)layout.Header.RefcountTableClusters << _geo.ClusterBits) / sizeof(ulong)];
        TableCodec.BigEndian.Read(file, (long)layout.Header.RefcountTableOffset, Table);
        _block = new byte[_geo.ClusterSize];
    }

    /// <summary>The refcount table as read at construction.</summary>
    public ulong[] Table { get; }

    /// <summary>The stored refcount of a cluster: 0 where no refcount block covers it, null where its block offset is unaligned.</summary>
    public ulong? Get(long cluster)
    {
        long index = cluster >> _geo.RefcountBlockBits;
        if (index >= Table.Length)
        {
            return 0;
        }

        long offset = Qcow2Entry.RefcountBlockOffset(Table[index]);
        if (offset == 0)
        {
            return 0;
        }

        if (_geo.OffsetInCluster(offset) != 0)
        {
            return null;
        }

        if (offset != _blockOffset)
        {
            _file.ReadExactly(offset, _block);
            _blockOffset = offset;
        }

        return RefcountBlock.Get(_block, cluster & (_geo.RefcountBlockEntries - 1), _geo.RefcountOrder);
    }
}
