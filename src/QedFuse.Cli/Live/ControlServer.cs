using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using QedFuse.Cli.Mount;

namespace QedFuse.Cli.Live;

/// <summary>
/// The daemon's end of the control channel: a Unix stream socket, owner-only (0600; root may
/// use any), carrying JSON lines. Each request line is one object with a "verb"; each answer is
/// one line, {"ok": true, "result": {...}} or {"ok": false, "error": "one line"}. A client may
/// send several requests on one connection. Requests are few and small, so each connection gets
/// a thread of its own and no FUSE worker is ever involved.
/// </summary>
internal sealed class ControlServer : IDisposable
{
    private const int MaxRequestBytes = 64 * 1024;
    private readonly string _path;
    private readonly Socket _listener;
    private readonly ControlCommands _commands;
    private readonly Thread _acceptor;
    private volatile bool _stopping;

    private ControlServer(string path, Socket listener, ControlCommands commands)
    {
        _path = path;
        _listener = listener;
        _commands = commands;
        _acceptor = new Thread(AcceptLoop) { IsBackground = true, Name = "control-accept" };
    }

    /// <summary>Listens at <paramref name="path"/> (replacing a stale socket of a dead daemon with the same pid).</summary>
    public static ControlServer Start(string path, ControlCommands commands)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            // Owner-only before anyone can connect: connect() to a socket not yet listening is refused.
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            listener.Listen(8);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        var server = new ControlServer(path, listener, commands);
        server._acceptor.Start();
        return server;
    }

    public void Dispose()
    {
        _stopping = true;
        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
        }

        _listener.Dispose(); // unblocks Accept
    }

    private void AcceptLoop()
    {
        while (!_stopping)
        {
            Socket client;
            try
            {
                client = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (_stopping)
                {
                    return;
                }

                Log.Error($"control socket {_path}: {e.Message}");
                Thread.Sleep(100);
                continue;
            }

            new Thread(() => Serve(client)) { IsBackground = true, Name = "control-client" }.Start();
        }
    }

    private void Serve(Socket client)
    {
        using (client)
        using (var stream = new NetworkStream(client, ownsSocket: false))
        using (var reader = new StreamReader(stream, new UTF8Encoding(false), false, 4096))
        {
            client.ReceiveTimeout = 60_000;
            try
            {
                while (ReadLine(reader) is { } line)
                {
                    byte[] answer = Answer(line);
                    stream.Write(answer);
                }
            }
            catch (Exception e)
            {
                Log.Info($"control: connection ended: {e.Message}"); // the client went away, or sent garbage
            }
        }
    }

    private static string? ReadLine(StreamReader reader)
    {
        var line = new StringBuilder();
        while (reader.Read() is int c and >= 0)
        {
            if (c == '\n')
            {
                return line.ToString();
            }

            if (line.Length >= MaxRequestBytes)
            {
                throw new IOException("request line too long");
            }

            line.Append((char)c);
        }

        return line.Length > 0 ? line.ToString() : null;
    }

    private byte[] Answer(string line)
    {
        var buffer = new MemoryStream();
        string verb = "?";
        string? error = null;
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            try
            {
                using var request = JsonDocument.Parse(line);
                verb = request.RootElement.TryGetProperty("verb", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "?";
                var result = new MemoryStream();
                using (var rw = new Utf8JsonWriter(result))
                {
                    _commands.Run(verb, request.RootElement, rw);
                }

                w.WriteBoolean("ok", true);
                w.WritePropertyName("result");
                w.WriteRawValue(result.ToArray());
            }
            catch (Exception e)
            {
                // Whatever a request runs into is its answer; a control request never takes the mount down.
                error = e is JsonException ? "request is not a JSON object line" : Program.OneLine(e.Message);
                w.WriteBoolean("ok", false);
                w.WriteString("error", error);
            }

            w.WriteEndObject();
        }

        Log.Info($"control: {verb}: {(error is null ? "ok" : error)}");
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }
}
