using System.IO.Compression;
using ZstdSharp;

namespace QedFuse.Block.Formats.Qcow2;

/// <summary>
/// Decompresses one compressed cluster: raw deflate (no zlib header, as QEMU writes it) or a
/// zstd frame. The stored extent is rounded up to whole sectors, so bytes after the stream
/// are padding; decompression stops once the cluster is full and must fill it exactly.
/// </summary>
internal static class ClusterCompression
{
    /// <summary>True when <paramref name="compressed"/> decompressed to exactly <paramref name="cluster"/>.Length bytes.</summary>
    public static bool TryDecompress(byte type, byte[] compressed, int length, Span<byte> cluster)
    {
        try
        {
            using var input = new MemoryStream(compressed, 0, length, writable: false);
            using Stream stream = type == Qcow2Header.CompressionZstd
                ? new DecompressionStream(input, leaveOpen: true)
                : new DeflateStream(input, CompressionMode.Decompress, leaveOpen: true);
            return stream.ReadAtLeast(cluster, cluster.Length, throwOnEndOfStream: false) == cluster.Length;
        }
        catch (Exception e) when (e is InvalidDataException or ZstdException or IOException)
        {
            return false;
        }
    }
}
