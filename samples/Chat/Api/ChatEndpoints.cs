using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AsyncScopes;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Chat.Realtime;
using Chat.Security;
using Chat.Storage;
using Chat.Webhooks;

namespace Chat.Api;

/// <summary>The HTTP API, the WebSocket endpoint and the page.</summary>
internal static class ChatEndpoints
{
    private const int DefaultPageSize = 50;

    public static void MapChat(this WebApplication app)
    {
        app.Use(RefuseWebhookDeliveries);
        app.MapMethods("/", [HttpMethods.Get, HttpMethods.Head], ServePage);
        app.MapGet("/api/rooms", GetRoomsAsync).RequireAuthorization(ClientKeys.Policy);
        app.MapGet("/api/rooms/{room}/messages", GetMessagesAsync).RequireAuthorization(ClientKeys.Policy);
        app.MapPost("/api/rooms/{room}/messages", PostMessageAsync).RequireAuthorization(ClientKeys.Policy).RequireRateLimiting(WriteRateLimit.Policy);
        app.MapGet("/api/webhooks", GetWebhooksAsync).RequireAuthorization(AdminKey.Scheme).RequireRateLimiting(WriteRateLimit.Policy);
        app.MapPost("/api/webhooks", RegisterWebhookAsync).RequireAuthorization(AdminKey.Scheme).RequireRateLimiting(WriteRateLimit.Policy);
        app.MapDelete("/api/webhooks/{id:long}", RemoveWebhookAsync).RequireAuthorization(AdminKey.Scheme).RequireRateLimiting(WriteRateLimit.Policy);
        // A health check writes to the database: limited like the other writes.
        app.MapHealthChecks("/health", new HealthCheckOptions { ResponseWriter = WriteLivenessAsync }).RequireRateLimiting(WriteRateLimit.Policy);
        app.MapGet("/health/details", GetHealthDetailsAsync).RequireAuthorization(AdminKey.Scheme).RequireRateLimiting(WriteRateLimit.Policy);
        app.Map("/ws/rooms/{room}", ConnectAsync).RequireAuthorization(ClientKeys.Policy);
        if (app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ChatOptions>>().Value.EnableDebugEndpoints)
        {
            app.MapPost("/debug/gc", CollectGarbage);

            // The names of the scopes are the service's, but a tree of them says what runs: for operators only. Writing
            // it walks every open scope: limited like the other admin requests.
            app.MapGet("/debug/scopes", WriteScopeTree).RequireAuthorization(AdminKey.Scheme).RequireRateLimiting(WriteRateLimit.Policy);
        }
    }

    // A delivery of this service's webhooks is never a request to its API: one that arrives came round a loop (a webhook
    // pointed back at the service through a name or a proxy that the destination check cannot see), which ends here.
    private static Task RefuseWebhookDeliveries(HttpContext context, RequestDelegate next) =>
        context.Request.Headers.ContainsKey(WebhookDispatcher.DeliveryHeader)
            ? Error(StatusCodes.Status403Forbidden, "A webhook delivery of this service cannot call its API.").ExecuteAsync(context)
            : next(context);

    private static IResult ServePage(HttpContext context)
    {
        context.Response.Headers.ContentSecurityPolicy = SecurityHeaders.PagePolicy;
        return Results.Bytes(SecurityHeaders.Page, "text/html; charset=utf-8");
    }

    private static async Task<IResult> GetRoomsAsync(
        string? after, string? limit, ChatService chat, CancellationToken cancellationToken)
    {
        if (after is not null && ChatInput.CheckRoom(after) is not null)
        {
            return Error(StatusCodes.Status400BadRequest, "'after' is a room name.");
        }

        if (ParsePageSize(limit, chat.Options.MaxPageSize) is not { } pageSize)
        {
            return Error(StatusCodes.Status400BadRequest, $"'limit' is a whole number from 1 to {chat.Options.MaxPageSize}.");
        }

        IReadOnlyList<RoomSummary> stored = await chat.Store.GetRoomsAsync(after, pageSize, cancellationToken).ConfigureAwait(false);
        IReadOnlyDictionary<string, int> online = chat.Hub.Rooms();
        RoomInfo[] rooms = [.. stored.Select(room => new RoomInfo(room.Name, room.Messages, room.LastMessageId, online.GetValueOrDefault(room.Name)))];
        return Json(new RoomPage(rooms, rooms.Length == pageSize ? rooms[^1].Name : null), ChatJson.Default.RoomPage);
    }

    // Absent: the default page size; otherwise a whole number from 1 to the maximum, or null when it is not one.
    private static int? ParsePageSize(string? limit, int max) =>
        limit is null ? Math.Min(DefaultPageSize, max)
        : int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out int size) && size >= 1 && size <= max ? size
        : null;

    private static async Task<IResult> GetMessagesAsync(
        string room, string? before, string? limit, ChatService chat, CancellationToken cancellationToken)
    {
        if (ChatInput.CheckRoom(room) is { } roomError)
        {
            return Error(StatusCodes.Status400BadRequest, roomError);
        }

        long? beforeId = null;
        if (before is not null)
        {
            if (!long.TryParse(before, NumberStyles.None, CultureInfo.InvariantCulture, out long parsed) || parsed < 1)
            {
                return Error(StatusCodes.Status400BadRequest, "'before' is a message id: a whole number from 1.");
            }

            beforeId = parsed;
        }

        if (ParsePageSize(limit, chat.Options.MaxPageSize) is not { } pageSize)
        {
            return Error(StatusCodes.Status400BadRequest, $"'limit' is a whole number from 1 to {chat.Options.MaxPageSize}.");
        }

        IReadOnlyList<StoredMessage> messages = await chat.Store.GetMessagesAsync(room, beforeId, pageSize, cancellationToken)
            .ConfigureAwait(false);
        long? nextBefore = messages.Count == pageSize ? messages[0].Id : null;
        return Json(new MessagePage(messages, nextBefore), ChatJson.Default.MessagePage);
    }

    private static async Task<IResult> PostMessageAsync(
        string room, HttpRequest request, ChatService chat, CancellationToken cancellationToken)
    {
        if (ChatInput.CheckRoom(room) is { } roomError)
        {
            return Error(StatusCodes.Status400BadRequest, roomError);
        }

        (PostMessageRequest? body, IResult? bad) = await ReadAsync(request, ChatJson.Default.PostMessageRequest, cancellationToken)
            .ConfigureAwait(false);
        if (bad is not null)
        {
            return bad;
        }

        if ((ChatInput.CheckName(body!.Name) ?? ChatInput.CheckText(body.Text, chat.Options.MaxMessageLength)) is { } inputError)
        {
            return Error(StatusCodes.Status400BadRequest, inputError);
        }

        StoredMessage message;
        try
        {
            message = await chat.PostAsync(room, body.Name!, body.Text!, sender: null, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            return Error(
                e is TimeoutException ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status500InternalServerError,
                ChatService.NotStoredMessage(e));
        }

        return Results.Json(
            message,
            ChatJson.Default.StoredMessage,
            statusCode: StatusCodes.Status201Created);
    }

    // Masked: a webhook URL's user name, password or query may hold the receiver's secret.
    private static async Task<IResult> GetWebhooksAsync(ChatService chat, CancellationToken cancellationToken)
    {
        IReadOnlyList<WebhookRegistration> webhooks = await chat.Store.GetWebhooksAsync(cancellationToken).ConfigureAwait(false);
        return Json<IReadOnlyList<WebhookRegistration>>(
            [.. webhooks.Select(webhook => webhook with { Url = WebhookDestinations.Redact(webhook.Url) })],
            ChatJson.Default.IReadOnlyListWebhookRegistration);
    }

    private static async Task<IResult> RegisterWebhookAsync(HttpRequest request, ChatService chat, CancellationToken cancellationToken)
    {
        (RegisterWebhookRequest? body, IResult? bad) = await ReadAsync(request, ChatJson.Default.RegisterWebhookRequest, cancellationToken)
            .ConfigureAwait(false);
        if (bad is not null)
        {
            return bad;
        }

        if (ChatInput.CheckRoom(body!.Room) is { } roomError)
        {
            return Error(StatusCodes.Status400BadRequest, roomError);
        }

        (Uri? url, string? urlError) = await chat.Destinations.CheckUrlAsync(body.Url, cancellationToken).ConfigureAwait(false);
        if (urlError is not null)
        {
            return Error(StatusCodes.Status400BadRequest, urlError);
        }

        // The secret is shown here, once: the registration keeps it for the signatures and shows it nowhere else.
        int maxPerRoom = chat.WebhookOptions.MaxPerRoom;
        string secret = WebhookSignature.NewSecret();
        (WebhookRegistration? webhook, bool created) = await chat.Store.AddWebhookAsync(
            body.Room!, url!.AbsoluteUri, secret, maxPerRoom, cancellationToken).ConfigureAwait(false);
        return webhook is null
            ? Error(StatusCodes.Status409Conflict, $"Room {body.Room} has {maxPerRoom} webhooks, the most a room may have.")
            : Results.Json(
                created ? webhook with { Secret = secret } : webhook,
                ChatJson.Default.WebhookRegistration,
                statusCode: created ? StatusCodes.Status201Created : StatusCodes.Status200OK);
    }

    private static async Task<IResult> RemoveWebhookAsync(long id, ChatService chat, CancellationToken cancellationToken) =>
        await chat.Store.RemoveWebhookAsync(id, cancellationToken).ConfigureAwait(false)
            ? Results.NoContent()
            : Error(StatusCodes.Status404NotFound, $"There is no webhook {id}.");

    // Anyone may ask whether the service is up; why it is not is for the admin (/health/details).
    private static Task WriteLivenessAsync(HttpContext context, HealthReport report) =>
        Results.Json(new Liveness(Describe(report.Status)), ChatJson.Default.Liveness).ExecuteAsync(context);

    private static async Task<IResult> GetHealthDetailsAsync(
        ChatService chat, HealthCheckService health, CancellationToken cancellationToken)
    {
        HealthReport report = await health.CheckHealthAsync(cancellationToken).ConfigureAwait(false);
        OutboxCounts? outbox = null;
        if (report.Entries.TryGetValue("database", out HealthReportEntry database) && database.Status == HealthStatus.Healthy)
        {
            outbox = await chat.Store.GetOutboxCountsAsync(cancellationToken).ConfigureAwait(false);
        }

        using var process = Process.GetCurrentProcess();
        var details = new HealthDetails(
            Describe(report.Status),
            [.. report.Entries.Select(entry => new HealthCheckOutcome(entry.Key, Describe(entry.Value.Status), entry.Value.Description))],
            chat.Hub.Count,
            ScopeDiagnostics.OpenScopes.Count,
            chat.Store.WriterStatistics,
            chat.Store.ReaderStatistics,
            chat.Webhooks.Statistics,
            outbox,
            process.WorkingSet64);
        return Results.Json(
            details,
            ChatJson.Default.HealthDetails,
            statusCode: report.Status == HealthStatus.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK);
    }

    private static string Describe(HealthStatus status) => status switch
    {
        HealthStatus.Healthy => "healthy",
        HealthStatus.Degraded => "degraded",
        _ => "unhealthy",
    };

    // The load benchmark measures what is left after a full collection.
    // The scopes open now, each under the scope that created it; recorded only while leak tracking is on
    // (ASYNCSCOPES_LEAK_TRACKING=1 at start), which the tree says when it is not.
    private static IResult WriteScopeTree()
    {
        using var tree = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
        ScopeDiagnostics.WriteTree(tree);
        return Results.Text(tree.ToString(), "text/plain; charset=utf-8");
    }

    private static IResult CollectGarbage(ChatService chat)
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        using var process = Process.GetCurrentProcess();
        var report = new MemoryReport(process.WorkingSet64, GC.GetTotalMemory(forceFullCollection: false), chat.Hub.Count, ScopeDiagnostics.OpenScopes.Count);
        return Json(report, ChatJson.Default.MemoryReport);
    }

    private static async Task ConnectAsync(HttpContext context, string room, ChatService chat)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await Error(StatusCodes.Status400BadRequest, "This endpoint takes WebSocket requests only.").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        string? name = context.Request.Query["name"];
        if ((ChatInput.CheckRoom(room) ?? ChatInput.CheckName(name)) is { } inputError)
        {
            await Error(StatusCodes.Status400BadRequest, inputError).ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        if (chat.Hub.IsStopping)
        {
            await Error(StatusCodes.Status503ServiceUnavailable, "The server is shutting down.").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        // Installed by FrameCountingStream before the WebSocket middleware: it counts every frame the client sends.
        var budget = (ReceiveBudget)context.Items[FrameCountingStream.BudgetKey]!;
        WebSocket accepted;
        try
        {
            accepted = await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
        }
        catch (InvalidOperationException) when (!context.Response.HasStarted)
        {
            // Kestrel refuses the upgrade: as many WebSockets are open as Chat:MaxWebSockets allows.
            await Error(StatusCodes.Status503ServiceUnavailable, "The server has as many WebSockets open as it takes. Try again later.")
                .ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        using WebSocket socket = accepted;
        var connection = new ChatConnection(socket, room, name!, chat.Options, chat.Time, budget, chat.PostFromSocketAsync);
        if (!await chat.Hub.RunAsync(connection).ConfigureAwait(false))
        {
            // The hub stopped between the check above and here: close in its place, within the close timeout.
            using var timeout = new CancellationTokenSource(chat.Options.CloseTimeout, chat.Time);
            try
            {
                await socket.CloseAsync(WebSocketCloseStatus.EndpointUnavailable, "The server is shutting down.", timeout.Token)
                    .ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
                // The client is gone or did not answer: disposing the socket aborts it.
            }
        }
    }

    private static async Task<(T? Value, IResult? Error)> ReadAsync<T>(
        HttpRequest request, JsonTypeInfo<T> type, CancellationToken cancellationToken)
        where T : class
    {
        // A page of another origin can send text/plain without asking the browser first (no preflight); JSON it
        // cannot.
        if (!request.HasJsonContentType())
        {
            return (null, Error(StatusCodes.Status415UnsupportedMediaType, "The body must be JSON, sent as Content-Type: application/json."));
        }

        try
        {
            T? value = await JsonSerializer.DeserializeAsync(request.Body, type, cancellationToken).ConfigureAwait(false);
            return value is null
                ? (null, Error(StatusCodes.Status400BadRequest, "The body must be a JSON object."))
                : (value, null);
        }
        catch (JsonException e)
        {
            return (null, Error(StatusCodes.Status400BadRequest, ChatInput.DescribeJsonError(e, "The body")));
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel's limits: a body over MaxRequestBodyBytes is 413.
            return (null, Error(e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? "The body is too large."
                : $"The request is malformed: {e.Message}"));
        }
    }

    private static IResult Json<T>(T value, JsonTypeInfo<T> type) => Results.Json(value, type);

    /// <summary>
    /// The answer to a request that failed with an exception no endpoint handled (the database failed, or stayed busy):
    /// the API's JSON error, 503 for a busy database, 500 otherwise, in words that name nothing internal. The exception
    /// handler has logged the exception.
    /// </summary>
    internal static Task WriteFailureAsync(HttpContext context)
    {
        SecurityHeaders.Add(context.Response.Headers);
        Exception? failure = context.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>()?.Error;
        return (failure is TimeoutException
                ? Error(StatusCodes.Status503ServiceUnavailable, "The database is busy. Try again.")
                : Error(StatusCodes.Status500InternalServerError, "The service failed to answer. Try again."))
            .ExecuteAsync(context);
    }

    /// <summary>The body of an error the framework answered without one (404 for no endpoint, 405 for a method the
    /// endpoint does not take): the API's JSON error with the status's reason phrase.</summary>
    internal static Task WriteStatusCodeAsync(Microsoft.AspNetCore.Diagnostics.StatusCodeContext context) =>
        Error(
            context.HttpContext.Response.StatusCode,
            $"{Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(context.HttpContext.Response.StatusCode)}.")
        .ExecuteAsync(context.HttpContext);

    /// <summary>An error of the API: <c>{"error": message}</c> with <paramref name="status"/>.</summary>
    internal static IResult Error(int status, string message) =>
        Results.Json(new ErrorResponse(message), ChatJson.Default.ErrorResponse, statusCode: status);
}
