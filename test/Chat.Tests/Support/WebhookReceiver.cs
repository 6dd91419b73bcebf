using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Chat.Tests.Support;

/// <summary>One request the receiver got: the delivery (outbox job) it names, the attempt, the message, and the body
/// as it came with its signature header.</summary>
/// <param name="TraceHeaders">The trace context headers the request carried (<c>traceparent</c>, <c>tracestate</c>,
/// <c>baggage</c>, <c>Request-Id</c>, <c>Correlation-Context</c>), by name.</param>
internal sealed record WebhookRequest(
    long Delivery, int Attempt, JsonElement Message, string Body, string? Signature, IReadOnlyList<string> TraceHeaders)
{
    public string Text => Message.GetProperty("text").GetString()!;
}

/// <summary>What became of a request: the status answered, or null when the sender gave up on it first.</summary>
internal sealed record WebhookOutcome(WebhookRequest Request, int? Status);

/// <summary>
/// A real HTTP server on 127.0.0.1 that receives webhook deliveries. <see cref="Respond"/> decides each answer; a test
/// reads the requests as they arrive and their outcomes as they end.
/// </summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<WebhookRequest> _arrived = Channel.CreateUnbounded<WebhookRequest>();
    private readonly Channel<WebhookOutcome> _ended = Channel.CreateUnbounded<WebhookOutcome>();

    private WebhookReceiver(WebApplication app)
    {
        _app = app;
        Url = new Uri(new Uri(app.Urls.Single()), "/hook");
    }

    public Uri Url { get; }

    /// <summary>Every outcome so far, in the order they ended.</summary>
    public ConcurrentQueue<WebhookOutcome> Outcomes { get; } = new();

    /// <summary>Answers a request with a status; it may wait, on the request's token, which fires when the sender gives up.</summary>
    public Func<WebhookRequest, CancellationToken, Task<int>> Respond { get; set; } =
        (_, _) => Task.FromResult(StatusCodes.Status200OK);

    public static async Task<WebhookReceiver> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(["--urls=http://127.0.0.1:0"]);
        builder.Logging.ClearProviders();
        WebApplication app = builder.Build();
        WebhookReceiver? receiver = null;
        app.MapPost("/hook", (HttpContext context) => receiver!.OnRequestAsync(context));
        app.MapPost("/hook/{**rest}", (HttpContext context) => receiver!.OnRequestAsync(context)); // a secret in the path
        await app.StartAsync();
        receiver = new WebhookReceiver(app);
        return receiver;
    }

    /// <summary>A <c>Retry-After</c> the receiver sends with every answer, when set.</summary>
    public TimeSpan? RetryAfter { get; set; }

    /// <summary>The next request to arrive.</summary>
    public async Task<WebhookRequest> NextRequestAsync()
    {
        using var timeout = new CancellationTokenSource(ChatServer.Patience);
        return await _arrived.Reader.ReadAsync(timeout.Token);
    }

    /// <summary>A request that has arrived and was not read yet, if any; does not wait.</summary>
    public bool TryTakeRequest(out WebhookRequest? request) => _arrived.Reader.TryRead(out request);

    /// <summary>The next request to end, answered or abandoned.</summary>
    public async Task<WebhookOutcome> NextOutcomeAsync()
    {
        using var timeout = new CancellationTokenSource(ChatServer.Patience);
        return await _ended.Reader.ReadAsync(timeout.Token);
    }

    /// <summary>The successful deliveries so far, by message text.</summary>
    public Dictionary<string, int> Delivered() =>
        Outcomes.Where(outcome => outcome.Status is >= 200 and < 300)
            .GroupBy(outcome => outcome.Request.Text)
            .ToDictionary(group => group.Key, group => group.Count());

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static readonly string[] TraceHeaderNames = ["traceparent", "tracestate", "baggage", "Request-Id", "Correlation-Context"];

    private async Task OnRequestAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        string body = await reader.ReadToEndAsync(context.RequestAborted);
        var request = new WebhookRequest(
            long.Parse(context.Request.Headers["X-Chat-Delivery"].ToString(), CultureInfo.InvariantCulture),
            int.Parse(context.Request.Headers["X-Chat-Attempt"].ToString(), CultureInfo.InvariantCulture),
            JsonDocument.Parse(body).RootElement,
            body,
            context.Request.Headers["X-Chat-Signature"].FirstOrDefault(),
            [.. TraceHeaderNames.Where(context.Request.Headers.ContainsKey)]);
        _arrived.Writer.TryWrite(request);
        int? status = null;
        try
        {
            status = await Respond(request, context.RequestAborted);
            context.Response.StatusCode = status.Value;
            if (RetryAfter is { } retryAfter)
            {
                context.Response.Headers.RetryAfter = ((long)retryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            }

            if (status is >= 300 and < 400)
            {
                context.Response.Headers.Location = Url.AbsoluteUri; // followed, it would come back here
            }

            await context.Response.CompleteAsync();
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            status = null; // the sender gave up first
        }
        finally
        {
            var outcome = new WebhookOutcome(request, context.RequestAborted.IsCancellationRequested ? null : status);
            Outcomes.Enqueue(outcome);
            _ended.Writer.TryWrite(outcome);
        }
    }
}
