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
