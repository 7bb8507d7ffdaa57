namespace QedFuse.Fuse;

/// <summary>File system statistics for statfs(2) / df (a subset of struct statvfs).</summary>
public struct FuseStatFs
{
    public ulong BlockSize;
    public ulong FragmentSize;
    /// <summary>Size of the file system in <see cref="FragmentSize"/> units.</summary>
    public ulong Blocks;
    public ulong BlocksFree;
    public ulong BlocksAvailable;
    public ulong Files;
    public ulong FilesFree;
    public ulong NameMax;
}
