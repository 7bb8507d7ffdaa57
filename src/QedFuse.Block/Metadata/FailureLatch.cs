namespace QedFuse.Block.Metadata;

/// <summary>
/// Remembers that a metadata write or an fdatasync of the image failed. Linux reports a
/// writeback error once and then marks the pages clean, so a retried sync would succeed and
/// let table entries reach the disk ahead of data that never did: after the first failure the
/// image is treated as failed. Later writes and flushes fail with EIO (reads go on), the
/// dirty flag stays set on disk, and the failure is logged once.
/// </summary>
internal sealed class FailureLatch
{
    public const int Eio = 5;

    private readonly string _path;
    private readonly Action<string>? _log;
    private volatile string? _reason;

    public FailureLatch(string path, Action<string>? log)
    {
        _path = path;
        _log = log;
    }

    public bool Failed => _reason is not null;

    /// <summary>Latches the failure (the first reason wins and is logged) and returns the EIO to throw.</summary>
    public IOException Fail(string reason, Exception? cause = null)
    {
        if (Interlocked.CompareExchange(ref _reason, reason, null) is null)
        {
            _log?.Invoke($"{_path}: {reason}; the image is now failed: writes and flushes return EIO until it is closed and reopened");
        }

        return new IOException($"{_path}: {_reason} (the image failed earlier; reopen it)", cause) { HResult = Eio };
    }

    public void ThrowIfFailed()
    {
        if (_reason is { } reason)
        {
            throw new IOException($"{_path}: {reason} (the image failed earlier; reopen it)") { HResult = Eio };
        }
    }
}
