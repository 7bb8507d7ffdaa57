namespace QedFuse.Block.Qed;

/// <summary>
/// One L2 table held in memory. All fields are guarded by the image's metadata lock.
/// </summary>
internal sealed class L2Table
{
    public L2Table(long hostOffset, int entries, bool isNew)
    {
        HostOffset = hostOffset;
        Entries = new ulong[entries];
        IsNew = isNew;
        Loading = !isNew;
    }

    public long HostOffset { get; }

    public ulong[] Entries { get; }

    /// <summary>Never written to disk: it must go out whole, and before the L1 entry that points to it.</summary>
    public bool IsNew { get; set; }

    /// <summary>Being read from disk; other users wait for it.</summary>
    public bool Loading { get; set; }

    public DirtyRange Dirty;

    /// <summary>Requests (and flush passes) using the table; a pinned table is never evicted.</summary>
    public int Pins { get; set; }

    public bool IsDirty => IsNew || !Dirty.IsEmpty;

    public bool Evictable => !IsDirty && !Loading && Pins == 0;
}
