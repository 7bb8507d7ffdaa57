using QedFuse.Block.Native;

namespace QedFuse.Block;

/// <summary>
/// The image cannot be opened or created as asked: bad header field, missing backing file,
/// bad size. The message is one line that names the file and the problem.
/// </summary>
public class BadImageException : IOException
{
    public BadImageException(string path, string problem)
        : base(OneLine($"{path}: {problem}"))
    {
        ImagePath = path;
    }

    public string ImagePath { get; }

    /// <summary>A file name from a hostile header may hold control characters: show them escaped, keep the message one line.</summary>
    internal static string OneLine(string text)
    {
        var sb = new System.Text.StringBuilder(text.Length);
        foreach (char c in text)
        {
            sb.Append(char.IsControl(c) ? $"\\x{(int)c:x2}" : c);
        }

        return sb.ToString();
    }
}

/// <summary>
/// A request met metadata that cannot be trusted (a table entry outside the file, misaligned).
/// Only that request fails, with EIO; the image stays open.
/// </summary>
public sealed class CorruptImageException : IOException
{
    public CorruptImageException(string path, string problem)
        : base(BadImageException.OneLine($"{path}: {problem}"), LibC.EIO)
    {
        ImagePath = path;
    }

    public string ImagePath { get; }
}

/// <summary>
/// The file is an image of a format QEMU knows and no driver here reads (VMDK, VDI, ...).
/// The message names the format and the way out: converting it.
/// </summary>
public sealed class UnsupportedFormatException(string path, ForeignFormats.Foreign format)
    : BadImageException(path, $"{format.Description}; qedfuse reads {ImageOpener.Readable(includeRaw: true)} (convert it with: qemu-img convert -O {Target} {path} {ConvertedName(path)})")
{
    public string Format { get; } = format.Name;

    /// <summary>The format a conversion should produce: qcow2 once a driver reads it, else QED.</summary>
    private static string Target => ImageOpener.Formats.Any(f => f.Name == "qcow2") ? "qcow2" : "qed";

    private static string ConvertedName(string path)
    {
        string dir = System.IO.Path.GetDirectoryName(path) ?? "";
        string name = System.IO.Path.Combine(dir, System.IO.Path.GetFileNameWithoutExtension(path) + "." + Target);
        return name == path ? System.IO.Path.Combine(dir, System.IO.Path.GetFileNameWithoutExtension(path) + "-converted." + Target) : name;
    }
}

/// <summary>
/// Another process (QEMU, a qedfuse mount) holds the image in a way that excludes this open,
/// under QEMU's locking protocol. <see cref="Holder"/> names it when /proc lets us see it.
/// </summary>
public sealed class ImageInUseException(string path, string reason, LockHolder? holder)
    : BadImageException(path, Sentence(reason, holder, null))
{
    public LockHolder? Holder { get; } = holder;

    /// <summary>Why the open conflicts: "which has it open with write access".</summary>
    public string Reason { get; } = reason;

    /// <summary>The one line, with <paramref name="holderDetail"/> (such as the holder's mount point) added to the holder's name.</summary>
    public string Describe(string? holderDetail) => OneLine($"{ImagePath}: {Sentence(Reason, Holder, holderDetail)}");

    private static string Sentence(string reason, LockHolder? holder, string? detail) =>
        holder is null ? $"in use by another process (QEMU?), {reason}" : $"in use by {holder.Describe(detail)}, {reason}";
}

/// <summary>The image lies on a read-only file system and was to be opened for writing.</summary>
public sealed class ReadOnlyFileSystemException(string path)
    : BadImageException(path, "read-only file system");

/// <summary>
/// The image failed earlier (a sync failed, or the header's state is unknown) and takes no
/// more changes: every write, flush and fsync fails with EIO; reads still work.
/// </summary>
public sealed class ImageFailedException : IOException
{
    public ImageFailedException(string path, string reason, int errno = LibC.EIO)
        : base(BadImageException.OneLine($"{path}: image failed ({reason}); it takes no more writes"), errno)
    {
        ImagePath = path;
    }

    public string ImagePath { get; }
}
