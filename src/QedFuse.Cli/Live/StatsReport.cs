using System.Globalization;
using System.Text.Json;
using QedFuse.Block;
using QedFuse.Cli.Mount;

namespace QedFuse.Cli.Live;

/// <summary>
/// The statistics and limits as they travel over the control channel and print: JSON with
/// QEMU's query-blockstats key names where QEMU has one, a table for people.
/// </summary>
internal static class StatsReport
{
    /// <summary>Request kinds in QEMU's key prefixes.</summary>
    private static readonly string[] Kinds = ["rd", "wr", "flush", "unmap"];

    /// <summary>The keys, as `qedfuse stats --help` documents them.</summary>
    public const string KeyHelp =
        "JSON: {\"files\": [{\"name\", \"image\", \"stats\": {...}, \"limits\": {...}}]}. stats keys (QEMU's query-blockstats names): "
        + "rd_bytes, wr_bytes, unmap_bytes, rd_operations, wr_operations, flush_operations, unmap_operations, "
        + "failed_rd_operations, failed_wr_operations, failed_flush_operations, failed_unmap_operations, "
        + "rd_total_time_ns, wr_total_time_ns, flush_total_time_ns, unmap_total_time_ns (time serving successful requests); ours: "
        + "rd_latency_ns, wr_latency_ns, flush_latency_ns, unmap_latency_ns ({p50, p99, max}, serving time, within 12.5%), "
        + "clusters_allocated, metadata_cache_hits, metadata_cache_misses, metadata_cache_evictions, metadata_flushes, "
        + "metadata_flush_time_ns, dirty_metadata_bytes (now), throttled_operations, throttled_time_ns (time requests waited for "
        + "an I/O limit, not part of *_total_time_ns; QEMU counts both there). Writes of zeros count as writes, discards as unmaps.";

    public static void Write(Utf8JsonWriter w, IReadOnlyList<MountedImage> images)
    {
        w.WriteStartObject();
        w.WriteStartArray("files");
        foreach (MountedImage m in images)
        {
            IoStatistics s = m.Stats;
            OperationCounters[] ops = [s.Read, s.Write, s.Flush, s.Unmap];
            MetadataCounters meta = m.Image.Counters;
            w.WriteStartObject();
            w.WriteString("name", m.FileName);
            w.WriteString("image", m.Image.Path);
            w.WriteStartObject("stats");
            w.WriteNumber("rd_bytes", s.Read.Bytes);
            w.WriteNumber("wr_bytes", s.Write.Bytes);
            w.WriteNumber("unmap_bytes", s.Unmap.Bytes);
            for (int k = 0; k < Kinds.Length; k++)
            {
                w.WriteNumber($"{Kinds[k]}_operations", ops[k].Operations);
            }

            for (int k = 0; k < Kinds.Length; k++)
            {
                w.WriteNumber($"failed_{Kinds[k]}_operations", ops[k].Failed);
            }

            for (int k = 0; k < Kinds.Length; k++)
            {
                w.WriteNumber($"{Kinds[k]}_total_time_ns", ops[k].TotalNs);
            }

            for (int k = 0; k < Kinds.Length; k++)
            {
                w.WriteStartObject($"{Kinds[k]}_latency_ns");
                w.WriteNumber("p50", ops[k].Latency.Percentile(0.50));
                w.WriteNumber("p99", ops[k].Latency.Percentile(0.99));
                w.WriteNumber("max", ops[k].Latency.Max);
                w.WriteEndObject();
            }

            w.WriteNumber("clusters_allocated", meta.ClustersAllocated);
            w.WriteNumber("metadata_cache_hits", meta.CacheHits);
            w.WriteNumber("metadata_cache_misses", meta.CacheMisses);
            w.WriteNumber("metadata_cache_evictions", meta.CacheEvictions);
            w.WriteNumber("metadata_flushes", meta.FlushPasses);
            w.WriteNumber("metadata_flush_time_ns", meta.FlushTimeNs);
            w.WriteNumber("dirty_metadata_bytes", meta.DirtyBytes);
            w.WriteNumber("throttled_operations", s.ThrottledOperations);
            w.WriteNumber("throttled_time_ns", s.ThrottledNs);
            w.WriteEndObject();
            WriteLimits(w, m.Throttle.Limits);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static void WriteLimits(Utf8JsonWriter w, ThrottleLimits limits)
    {
        w.WriteStartObject("limits");
        for (int i = 0; i < ThrottleLimits.Names.Length; i++)
        {
            w.WriteNumber(ThrottleLimits.Names[i], limits.Values[i] ?? 0);
        }

        w.WriteNumber(ThrottleLimits.BurstName, limits.BurstSeconds ?? ThrottleLimits.DefaultBurstSeconds);
        w.WriteEndObject();
    }

    /// <summary>Limits from a request: only the keys present change.</summary>
    public static ThrottleLimits ReadLimits(JsonElement e)
    {
        var values = new long?[ThrottleLimits.Names.Length];
        for (int i = 0; i < values.Length; i++)
        {
            if (e.TryGetProperty(ThrottleLimits.Names[i], out var v))
            {
                values[i] = v.TryGetInt64(out long n) && n >= 0 ? n : throw new UsageException($"{ThrottleLimits.Names[i]}: not a limit: {v}");
            }
        }

        double? burst = null;
        if (e.TryGetProperty(ThrottleLimits.BurstName, out var b))
        {
            burst = ThrottleLimits.ParseBurst(b.ToString(), ThrottleLimits.BurstName);
        }

        return new ThrottleLimits { Values = values, BurstSeconds = burst };
    }

    /// <summary>The human form of a stats result: per file, a table of request kinds, then the metadata and throttle lines.</summary>
    public static void PrintHuman(JsonElement result, TextWriter o)
    {
        string[] labels = ["read", "write", "flush", "unmap"];
        foreach (JsonElement f in result.GetProperty("files").EnumerateArray())
        {
            JsonElement s = f.GetProperty("stats");
            long N(string key) => s.GetProperty(key).GetInt64();
            o.WriteLine($"{f.GetProperty("name").GetString()}  ({f.GetProperty("image").GetString()})");
            o.WriteLine($"  {"",-6} {"ops",12} {"bytes",12} {"failed",8} {"total time",12} {"p50",10} {"p99",10} {"max",10}");
            for (int k = 0; k < Kinds.Length; k++)
            {
                JsonElement lat = s.GetProperty($"{Kinds[k]}_latency_ns");
                string bytes = Kinds[k] != "flush" ? ByteSize.Format(N($"{Kinds[k]}_bytes")) : "-";
                o.WriteLine($"  {labels[k],-6} {N($"{Kinds[k]}_operations"),12} {bytes,12} {N($"failed_{Kinds[k]}_operations"),8} "
                    + $"{Duration(N($"{Kinds[k]}_total_time_ns")),12} {Duration(lat.GetProperty("p50").GetInt64()),10} "
                    + $"{Duration(lat.GetProperty("p99").GetInt64()),10} {Duration(lat.GetProperty("max").GetInt64()),10}");
            }

            o.WriteLine($"  clusters allocated {N("clusters_allocated")}; metadata cache {N("metadata_cache_hits")} hits, "
                + $"{N("metadata_cache_misses")} misses, {N("metadata_cache_evictions")} evictions");
            o.WriteLine($"  metadata flushes {N("metadata_flushes")} ({Duration(N("metadata_flush_time_ns"))}); dirty metadata now {ByteSize.Format(N("dirty_metadata_bytes"))}");
            o.WriteLine($"  throttled {N("throttled_operations")} requests, {Duration(N("throttled_time_ns"))} waiting; limits: {DescribeLimits(f.GetProperty("limits"))}");
        }
    }

    public static string DescribeLimits(JsonElement limits)
    {
        var set = ThrottleLimits.Names
            .Select(n => (n, v: limits.GetProperty(n).GetInt64()))
            .Where(x => x.v > 0)
            .Select(x => x.n.StartsWith("bps", StringComparison.Ordinal) ? $"{x.n}={ByteSize.Format(x.v)}/s" : $"{x.n}={x.v}/s")
            .ToList();
        return set.Count == 0
            ? "none"
            : string.Join(", ", set) + $", burst {limits.GetProperty(ThrottleLimits.BurstName).GetDouble().ToString(CultureInfo.InvariantCulture)} s";
    }

    private static string Duration(long ns) => ns switch
    {
        0 => "0",
        < 10_000 => $"{ns} ns",
        < 10_000_000 => $"{ns / 1000} us",
        < 10_000_000_000 => $"{ns / 1_000_000} ms",
        _ => $"{ns / 1_000_000_000} s",
    };
}
