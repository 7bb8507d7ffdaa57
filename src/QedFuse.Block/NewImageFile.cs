namespace QedFuse.Block;

/// <summary>
/// Writes a freshly created image atomically: pieces at their offsets in a temporary file
/// beside the target, set to its length, made durable, then renamed into place, so a failed
/// or interrupted create never leaves a half-written image under the requested name.
/// </summary>
internal static class NewImageFile
{
    public static void Write(string path, IEnumerable<(long Offset, byte[] Bytes)> pieces, long length, bool overwrite,
        Action<Microsoft.Win32.SafeHandles.SafeFileHandle>? fill = null)
    {
        if (File.Exists(path) && !overwrite)
        {
            throw new BadImageException(path, "file exists (use --force to replace it)");
        }

        string temp = $"{path}.creating-{Environment.ProcessId}";
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.ReadWrite))
            {
                RandomAccess.SetLength(handle, length);
                foreach (var (offset, bytes) in pieces)
                {
                    RandomAccess.Write(handle, bytes, offset);
                }

                fill?.Invoke(handle);
                RandomAccess.FlushToDisk(handle);
            }

            File.Move(temp, path, overwrite);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
