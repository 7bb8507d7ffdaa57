using System.Buffers.Binary;

namespace QedFuse.Block;

/// <summary>
/// Formats QEMU knows that have no driver here, recognised by their magic so that probing
/// never mistakes them for raw disks (QEMU would then read their metadata as guest data). A
/// registered <see cref="IImageFormat"/> is probed first, so a format that gains a driver
/// simply stops being foreign; its entry here can stay.
/// </summary>
public static class ForeignFormats
{
    /// <summary>A format QEMU reads and we do not: its qemu-img name and the words users know it by.</summary>
    public sealed record Foreign(string Name, string Description);

    // Magics with bytes above 0x7f, which a u8 string literal would encode as two bytes each.
    private static ReadOnlySpan<byte> QcowMagic => [(byte)'Q', (byte)'F', (byte)'I', 0xfb];

    private static ReadOnlySpan<byte> LuksMagic => [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xba, 0xbe];

    private static readonly (Foreign Format, Func<ReadOnlySpan<byte>, bool> Matches)[] Known =
    [
        (new("qcow2", "qcow2 image"), h => h.StartsWith(QcowMagic) && h.Length >= 8 && BinaryPrimitives.ReadUInt32BigEndian(h[4..]) >= 2),
        (new("qcow", "qcow (version 1) image"), h => h.StartsWith(QcowMagic) && h.Length >= 8 && BinaryPrimitives.ReadUInt32BigEndian(h[4..]) == 1),
        (new("vmdk", "VMDK image"), h => h.StartsWith("KDMV"u8) || h.StartsWith("COWD"u8) || h.StartsWith("# Disk DescriptorFile"u8)),
        (new("vdi", "VDI (VirtualBox) image"), h => h.Length >= 68 && BinaryPrimitives.ReadUInt32LittleEndian(h[64..]) == 0xbeda107f),
        (new("vhdx", "VHDX (Hyper-V) image"), h => h.StartsWith("vhdxfile"u8)),
        (new("vpc", "VHD (Virtual PC) image"), h => h.StartsWith("conectix"u8)),
        (new("parallels", "Parallels image"), h => h.StartsWith("WithoutFreeSpace"u8) || h.StartsWith("WithouFreSpacExt"u8)),
        (new("luks", "LUKS encrypted image"), h => h.StartsWith(LuksMagic)),
        (new("bochs", "Bochs image"), h => h.StartsWith("Bochs Virtual HD Image"u8)),
        (new("cloop", "cloop (compressed loop) image"), h => h.StartsWith("#!/bin/sh\n#V2.0 Format\nmodprobe cloop"u8)),
    ];

    /// <summary>The foreign format whose magic <paramref name="head"/> starts with, or null (a raw disk, as far as QEMU can tell).</summary>
    public static Foreign? Identify(ReadOnlySpan<byte> head)
    {
        foreach (var (format, matches) in Known)
        {
            if (matches(head))
            {
                return format;
            }
        }

        return null;
    }
}
