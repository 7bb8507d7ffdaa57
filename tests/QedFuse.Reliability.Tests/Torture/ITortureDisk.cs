namespace QedFuse.Reliability.Tests.Torture;

/// <summary>What the torture workload drives: a mounted raw file, or an engine image with faults injected.</summary>
internal interface ITortureDisk
{
    long Size { get; }

    void Write(long offset, ReadOnlySpan<byte> data);

    /// <summary>Punch hole / write zeroes.</summary>
    void Zero(long offset, long length);

    void Fsync();
}
