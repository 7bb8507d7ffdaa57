namespace QedFuse.Block.Metadata;

/// <summary>One metadata table held in memory (an L2 table, a refcount block). Guarded by the image's <see cref="MetadataGate"/>.</summary>
internal sealed class CachedTable
{
    public CachedTable(long hostOffset, int entries, bool isNew)
    {
        HostOffset = hostOffset;
        Entries = new ulong[entries];
        IsNew = isNew;
        Loading = !isNew;
    }

    public long HostOffset { get; }

    public ulong[] Entries { get; }

    /// <summary>Never written to disk: it must go out whole, and before anything that points to it.</summary>
    public bool IsNew { get; set; }

    /// <summary>Being read from disk; other users wait for it.</summary>
    public bool Loading { get; set; }

    /// <summary>Requests (and flush passes) using the table; a pinned table is never evicted.</summary>
    public int Pins { get; set; }

    /// <summary>Entries changed in memory since they were last written.</summary>
    public DirtyRange Dirty;

    public bool IsDirty => IsNew || !Dirty.IsEmpty;

    public bool Evictable => !IsDirty && !Loading && Pins == 0;
}
