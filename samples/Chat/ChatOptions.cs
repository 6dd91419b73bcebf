namespace Chat;

/// <summary>Limits and timings of the chat: section <c>Chat</c> of the configuration.</summary>
internal sealed class ChatOptions
{
    public const string Section = "Chat";

    /// <summary>The longest message text, in characters.</summary>
    public int MaxMessageLength { get; set; } = 1_000;

    /// <summary>The largest WebSocket message a client may send, in bytes; a larger one closes the connection with
    /// 1009.</summary>
    public int MaxFrameBytes { get; set; } = 8 * 1024;

    /// <summary>The largest HTTP request body, in bytes; a larger one gets 413.</summary>
    public int MaxRequestBodyBytes { get; set; } = 16 * 1024;

    /// <summary>Frames waiting to be sent to one client; a client that falls further behind is closed with 1008.</summary>
    public int SendQueueCapacity { get; set; } = 256;

    /// <summary>Frames a client may send in a burst; see <see cref="ReceiveFramesPerSecond"/>.</summary>
    public int ReceiveBurst { get; set; } = 20;

    /// <summary>Frames per second a client may send once its burst is spent; beyond it the connection is closed with
    /// 1008.</summary>
    public double ReceiveFramesPerSecond { get; set; } = 10;

    /// <summary>How often the server sends <c>{"type":"ping"}</c>, which a client answers to be heard from.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A client not heard from for this long (no frame at all, a pong included) is taken for gone and
    /// aborted.</summary>
    public TimeSpan SilenceTimeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>How long a closing connection waits for the client's close frame before it aborts.</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>HTTP requests that change something (<c>POST</c>, <c>DELETE</c>) one client address may send in a
    /// burst; see <see cref="WritesPerSecond"/>.</summary>
    public int WriteBurst { get; set; } = 20;

    /// <summary>HTTP requests that change something one client address may send per second once its burst is spent;
    /// beyond it they get 429 with <c>Retry-After</c>.</summary>
    public double WritesPerSecond { get; set; } = 5;

    /// <summary>Connections the server keeps open at once, WebSockets included (Kestrel's limit); a connection beyond
    /// it is closed at once.</summary>
    public long MaxConnections { get; set; } = 10_000;

    /// <summary>WebSockets open at once (Kestrel's limit on upgraded connections); an upgrade beyond it gets 503.</summary>
    public long MaxWebSockets { get; set; } = 5_000;

    /// <summary>The most messages one history page returns.</summary>
    public int MaxPageSize { get; set; } = 200;

    /// <summary>How long a stop may take: connections closed, deliveries drained. The host's shutdown timeout.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Maps <c>POST /debug/gc</c>, which runs a full garbage collection and reports the memory left (for the
    /// load benchmark), and <c>GET /debug/scopes</c> (admin key), the tree of the scopes open now, recorded while leak
    /// tracking is on (<c>ASYNCSCOPES_LEAK_TRACKING=1</c>). Off by default.</summary>
    public bool EnableDebugEndpoints { get; set; }

    public IEnumerable<string> Validate()
    {
        if (MaxMessageLength is < 1 or > 100_000)
        {
            yield return "Chat:MaxMessageLength must be between 1 and 100000.";
        }

        if (MaxFrameBytes < 256)
        {
            yield return "Chat:MaxFrameBytes must be at least 256.";
        }

        if (MaxRequestBodyBytes < 256)
        {
            yield return "Chat:MaxRequestBodyBytes must be at least 256.";
        }

        if (SendQueueCapacity < 1)
        {
            yield return "Chat:SendQueueCapacity must be at least 1.";
        }

        if (ReceiveBurst < 1 || !(ReceiveFramesPerSecond > 0))
        {
            yield return "Chat:ReceiveBurst must be at least 1 and Chat:ReceiveFramesPerSecond greater than 0.";
        }

        if (HeartbeatInterval <= TimeSpan.Zero || SilenceTimeout < HeartbeatInterval)
        {
            yield return "Chat:HeartbeatInterval must be positive and Chat:SilenceTimeout at least as long.";
        }

        if (CloseTimeout <= TimeSpan.Zero || ShutdownTimeout <= TimeSpan.Zero)
        {
            yield return "Chat:CloseTimeout and Chat:ShutdownTimeout must be positive.";
        }

        // Each is a timer's due time, which has a ceiling (about 49 days); no sensible value comes near it.
        if (new[] { HeartbeatInterval, SilenceTimeout, CloseTimeout, ShutdownTimeout }.Any(timing => timing > TimeSpan.FromDays(1)))
        {
            yield return "Chat:HeartbeatInterval, Chat:SilenceTimeout, Chat:CloseTimeout and Chat:ShutdownTimeout must be at most a day.";
        }

        if (WriteBurst is < 1 or > 1_000_000 || !(WritesPerSecond is >= 0.001 and <= 1_000_000))
        {
            yield return "Chat:WriteBurst must be between 1 and 1000000 and Chat:WritesPerSecond between 0.001 and 1000000.";
        }

        if (MaxConnections < 1 || MaxWebSockets < 1)
        {
            yield return "Chat:MaxConnections and Chat:MaxWebSockets must be at least 1.";
        }

        if (MaxPageSize < 1)
        {
            yield return "Chat:MaxPageSize must be at least 1.";
        }
    }
}
