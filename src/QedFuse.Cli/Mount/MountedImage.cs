using QedFuse.Block;
using QedFuse.Cli.Live;
using QedFuse.Fuse;

namespace QedFuse.Cli.Mount;

/// <summary>One image shown in the mount as one regular file.</summary>
internal sealed class MountedImage
{
    private int _corruptionLogged;
    private long _writesSinceFlush;

    public MountedImage(ulong ino, string fileName, IBlockImage image)
    {
        Ino = ino;
        FileName = fileName;
        FileNameUtf8 = System.Text.Encoding.UTF8.GetBytes(fileName);
        Image = image;
        Throttle = new FileThrottle(Stats);
        Revalidator = image.IsReadOnly ? new ImageRevalidator(image) : null;
        var fi = new FileInfo(image.Path);
        MTime = FuseTimespec.FromDateTimeOffset(fi.LastWriteTimeUtc);
        ATime = FuseTimespec.FromDateTimeOffset(fi.LastAccessTimeUtc);
        CTime = MTime;
    }

    public ulong Ino { get; }

    public string FileName { get; }

    /// <summary>The name as lookup and readdir compare and list it, encoded once.</summary>
    public byte[] FileNameUtf8 { get; }

    public IBlockImage Image { get; }

    /// <summary>What the file has served since mount (qedfuse stats).</summary>
    public IoStatistics Stats { get; } = new();

    /// <summary>Its I/O limits (qedfuse throttle, -o iops=...).</summary>
    public FileThrottle Throttle { get; }

    /// <summary>Reloads the metadata of a read-only image another program may change; null for a writable one.</summary>
    public ImageRevalidator? Revalidator { get; }

    /// <summary>Taken once at mount: a changing mtime would make the kernel drop its page cache on every getattr.</summary>
    public FuseTimespec MTime { get; }

    public FuseTimespec ATime { get; }

    public FuseTimespec CTime { get; }

    public void NoteWrite() => Interlocked.Increment(ref _writesSinceFlush);

    /// <summary>True (and resets) when anything was written since the last flush.</summary>
    public bool TakeWritesSinceFlush() => Interlocked.Exchange(ref _writesSinceFlush, 0) != 0;

    public void UndoTakeWrites() => Interlocked.Increment(ref _writesSinceFlush);

    /// <summary>Logs the first corrupt-metadata error of this image; later ones only fail their request.</summary>
    public void ReportCorruption(CorruptImageException e)
    {
        if (Interlocked.Exchange(ref _corruptionLogged, 1) == 0)
        {
            Log.Error($"{e.Message} (reads of that region fail with EIO; run 'qedfuse check' after unmounting)");
        }
    }

    /// <summary>The file name an image gets in the mount: its last extension replaced by .raw.</summary>
    public static string NameFor(string imagePath)
    {
        string name = Path.GetFileName(imagePath.TrimEnd('/'));
        int dot = name.LastIndexOf('.');
        return (dot > 0 ? name[..dot] : name) + ".raw";
    }
}
