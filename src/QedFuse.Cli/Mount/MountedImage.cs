using QedFuse.Block;
using QedFuse.Cli.Live;
using QedFuse.Fuse;

namespace QedFuse.Cli.Mount;

/// <summary>One image shown in the mount as one regular file.</summary>
internal sealed class MountedImage
{
    private int _corruptionLogged;
    private long _writesDone;
    private long _writesFlushed;

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

    /// <summary>
    /// Writes (and zeroings) finished so far. Counted when they end, not when they start: a
    /// flush that begins while a write is still running must not count that write as flushed.
    /// </summary>
    public long WritesDone => Interlocked.Read(ref _writesDone);

    public void NoteWriteDone() => Interlocked.Increment(ref _writesDone);

    /// <summary>Whether a write finished after the start of the last successful flush.</summary>
    public bool HasUnflushedWrites => WritesDone != Interlocked.Read(ref _writesFlushed);

    /// <summary>Records a successful flush that began when <paramref name="writesDoneAtStart"/> writes had finished.</summary>
    public void NoteFlushed(long writesDoneAtStart)
    {
        long seen = Interlocked.Read(ref _writesFlushed);
        while (seen < writesDoneAtStart)
        {
            long prior = Interlocked.CompareExchange(ref _writesFlushed, writesDoneAtStart, seen);
            if (prior == seen)
            {
                return;
            }

            seen = prior;
        }
    }

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
