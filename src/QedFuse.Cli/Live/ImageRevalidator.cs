using QedFuse.Block;

namespace QedFuse.Cli.Live;

/// <summary>
/// Keeps a read-only image's cached metadata in step with a file another program writes
/// (-o ro,force_share), as NFS's close-to-open consistency does: every open first compares the
/// modification time and length of each file of the chain with what they were at the last
/// load (no I/O beyond stat), and only when something changed reloads the metadata. A check
/// of header and L1 alone would not do: a write into an already allocated cluster or a new
/// entry in an existing L2 table changes neither, yet the data or the L2 table did change.
/// A time stamp younger than two seconds is not trusted (file times are coarse, like Git's
/// "racily clean" index entries), so a file written right before a look is reloaded next time too.
/// </summary>
internal sealed class ImageRevalidator
{
    private static readonly TimeSpan Settled = TimeSpan.FromSeconds(2);
    private readonly object _gate = new();
    private readonly IBlockImage _image;
    private (string Path, DateTime Modified, long Length)[] _stamp;
    private bool _trusted;

    public ImageRevalidator(IBlockImage image)
    {
        _image = image;
        (_stamp, _trusted) = Take();
    }

    /// <summary>Reloads if the image changed since the last load; true when it did (the kernel's cached pages are stale then).</summary>
    public bool RevalidateIfChanged()
    {
        lock (_gate)
        {
            var (now, trusted) = Take();
            if (_trusted && now.SequenceEqual(_stamp))
            {
                return false;
            }

            ReloadLocked(now, trusted);
            return true;
        }
    }

    /// <summary>Reloads unconditionally (qedfuse refresh).</summary>
    public void Reload()
    {
        lock (_gate)
        {
            var (now, trusted) = Take();
            ReloadLocked(now, trusted);
        }
    }

    private void ReloadLocked((string, DateTime, long)[] stamp, bool trusted)
    {
        // The stamp is taken before the reload: a write that lands during it shows as a change next time.
        _trusted = false;
        _image.Reload();
        _stamp = stamp;
        _trusted = trusted;
    }

    private ((string Path, DateTime Modified, long Length)[] Stamp, bool Trusted) Take()
    {
        var stamp = new List<(string, DateTime, long)>();
        bool trusted = true;
        DateTime now = DateTime.UtcNow;
        for (IBlockImage? layer = _image; layer is not null; layer = layer.Backing)
        {
            var info = new FileInfo(layer.Path);
            DateTime modified = info.Exists ? info.LastWriteTimeUtc : default;
            trusted &= now - modified >= Settled;
            stamp.Add((layer.Path, modified, info.Exists ? info.Length : -1));
        }

        return (stamp.ToArray(), trusted);
    }
}
