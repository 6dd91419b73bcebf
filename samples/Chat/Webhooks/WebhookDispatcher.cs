using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using AsyncScopes;
using AsyncScopes.Hosting;
using Chat.Storage;
using Chat.Telemetry;
using Microsoft.Extensions.Options;

namespace Chat.Webhooks;

/// <summary>
/// Delivers the outbox: a feeder loop takes the jobs that are due and hands them to a <see cref="WorkQueue{T}"/> (the
/// container's <c>webhooks</c> queue), whose workers POST each message to its webhook under a deadline per attempt.
/// A job leaves the outbox only as
/// delivered (after a 2xx answer) or failed (after its last attempt); a failed attempt reschedules it with a doubling
/// backoff. So a job the service had no time for at shutdown, or that a crash interrupted, is simply still pending at
/// the next start.
/// </summary>
/// <remarks>
/// The feeder claims the jobs it takes for <see cref="WebhookOptions.ClaimTimeout"/>, through the writer's connection,
/// which sees every attempt recorded: a job is taken again only after the outcome of its last attempt is written, and
/// with the attempt count written then. It claims no more than the idle workers can start at once, so that no claimed
/// job waits in the queue while its claim runs out, and a worker that finishes wakes it. No other node takes a claimed
/// job; a stop gives up the claims on the jobs it leaves.
/// <para>A hosted scope (<see cref="ScopedBackgroundService"/>): the feeder loop is its work, stopped in two phases
/// with the host's shutdown timeout; the chat service hands it the store (<see cref="UseStore"/>) as it opens it,
/// before the host starts it.</para>
/// </remarks>
internal sealed partial class WebhookDispatcher : ScopedBackgroundService
{
    /// <summary>The request header that names the delivery (the outbox job), the same on every attempt: receivers
    /// use it to drop a delivery they already had.</summary>
    public const string DeliveryHeader = "X-Chat-Delivery";

    /// <summary>The request header that numbers the attempt, from 1.</summary>
    public const string AttemptHeader = "X-Chat-Attempt";

    private static readonly MediaTypeHeaderValue JsonContentType = new("application/json") { CharSet = "utf-8" };

    private ChatStore? _store;
    private readonly WebhookOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly WorkQueue<OutboxJob> _queue;

    // Jobs handed to the queue and not yet finished. The database's claims keep a job from being taken twice; this
    // keeps the feeder from claiming more than the workers can start.
    private int _inFlight;

    // Deliveries running per destination (WebhookDestinations.Origin of the URL): the feeder claims nothing for a
    // destination at WebhookOptions.MaxPerDestination, so that one slow receiver cannot hold every worker.
    private readonly ConcurrentDictionary<string, int> _perDestination = new(StringComparer.Ordinal);
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _recorded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _claimsReleased;

    /// <param name="options">The webhook settings.</param>
    /// <param name="destinations">Where webhooks may be sent.</param>
    /// <param name="queue">The deliveries' queue, from the container (<see cref="WebhookServices"/>), whose handler is
    /// <see cref="DeliverAsync"/>: this dispatcher completes it when it stops, and then gives up its claims.</param>
    /// <param name="time">The clock of the outbox and of the backoff.</param>
    /// <param name="logger">Where deliveries, failures and stragglers are logged.</param>
    public WebhookDispatcher(
        IOptions<WebhookOptions> options,
        WebhookDestinations destinations,
        [FromKeyedServices(WebhookServices.Queue)] WorkQueue<OutboxJob> queue,
        TimeProvider time,
        ILogger<WebhookDispatcher> logger)
        : base(logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;

        // Every connection goes through the destination check, on the addresses the host resolves to now; no proxy
        // (which would be the one checked), no redirect followed (a redirect is a failed attempt, not a new
        // destination). No timeout of its own: each attempt runs under Deadline.RunAsync, which cancels the request
        // and waits for it.
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = destinations.ConnectAsync,
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = _options.AttemptTimeout,

            // No trace context (traceparent, tracestate, baggage) to a receiver: a third party, which has no use for the
            // service's trace ids, and a client's chosen trace context must not reach it through a delivery.
            ActivityHeadersPropagator = null,
        };
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _queue = queue;
    }

    private ChatStore Store => _store ?? throw new InvalidOperationException("The dispatcher has no store: the chat service did not start.");

    /// <summary>Pending (queued), running, completed and failed deliveries of this run.</summary>
    public WorkQueueStatistics Statistics => _queue.Statistics;

    /// <summary>Completes when the next attempt's outcome is written to the outbox. Read it before reading the outbox,
    /// so that no outcome falls between the two.</summary>
    public Task Recorded => Volatile.Read(ref _recorded).Task;

    /// <summary>Tells the feeder that the outbox has new jobs.</summary>
    public void Wake() => Volatile.Read(ref _wake).TrySetResult();

    /// <summary>The scope of the feeder loop, named for the scope tree and straggler reports.</summary>
    protected override TaskScopeOptions ScopeOptions =>
        new() { Name = "webhook feeder", TimeProvider = _time, StragglerTimeout = TimeSpan.FromSeconds(5) };

    /// <summary>Gives the dispatcher the store it feeds from, as the chat service opens it (before the host starts the
    /// dispatcher).</summary>
    public void UseStore(ChatStore store) => _store = store;

    /// <summary>
    /// Stops taking jobs (the feeder ends at the scope's <see cref="TaskScope.Stopping"/>), then lets the deliveries
    /// already queued finish. When <paramref name="cancellationToken"/> (the host's shutdown timeout) fires, the
    /// running ones are cancelled; every job not delivered stays pending in the outbox, its claim given up.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_store is null)
        {
            return; // never fed: nothing claimed
        }

        WorkQueueResult<OutboxJob> result = await _queue.CompleteAsync(cancellationToken).ConfigureAwait(false);
        await ReleaseClaimsAsync().ConfigureAwait(false);
        LogStopped(_logger, result.Completed, result.Unprocessed.Count);
    }

    /// <summary>The feeder loop, until the host stops the dispatcher.</summary>
    protected override Task ExecuteAsync(TaskScope scope) => FeedAsync(scope.Stopping);

    /// <summary>Once the feeder has ended: completes the queue (within its drain timeout) if no stop did, gives up the
    /// claims left, and releases the HTTP client.</summary>
    protected override async ValueTask DisposeAsyncCore()
    {
        await _queue.DisposeAsync().ConfigureAwait(false); // completed already after a stop: then it returns at once
        if (_store is not null)
        {
            await ReleaseClaimsAsync().ConfigureAwait(false);
        }

        _http.Dispose();
        await base.DisposeAsyncCore().ConfigureAwait(false);
    }

    private async Task FeedAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await FeedOnceAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // The outbox could not be read: try again later rather than stop delivering for good.
                LogFeedFailed(_logger, e);
                await Task.Delay(Max(_options.BackoffBase, TimeSpan.FromSeconds(1)), _time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    // Hands the due jobs to the queue, then waits until the next one is due or a new one is written.
    private async Task FeedOnceAsync(CancellationToken cancellationToken)
    {
        // Armed before the outbox is read: a job written during the read ends the wait below at once.
        var wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _wake, wake);

        DateTimeOffset now = _time.GetUtcNow();
        int limit = _options.Workers - Volatile.Read(ref _inFlight);
        string[] busy = [.. _perDestination.Where(entry => entry.Value >= _options.EffectiveMaxPerDestination).Select(entry => entry.Key + "/")];
        IReadOnlyList<OutboxJob> due = limit > 0
            ? await Store.ClaimDueJobsAsync(now, now + _options.ClaimTimeout, limit, busy, cancellationToken).ConfigureAwait(false)
            : [];
        foreach (OutboxJob job in due)
        {
            // One claim may take more jobs for a destination than it may run at once: the others go back, still due.
            string destination = WebhookDestinations.Origin(job.Url);
            if (_perDestination.AddOrUpdate(destination, 1, (_, running) => running + 1) > _options.EffectiveMaxPerDestination)
            {
                Leave(destination);
                await Store.ReleaseClaimAsync(job.Id, cancellationToken).ConfigureAwait(false);
                continue;
            }

            // Never waits: no more jobs are in flight than there are workers. The backlog stays in the outbox.
            Interlocked.Increment(ref _inFlight);
            await _queue.EnqueueAsync(job, cancellationToken).ConfigureAwait(false);
        }

        // Due jobs left over wait for a worker, which wakes the feeder when it finishes.
        DateTimeOffset? next = await Store.GetNextDueAsync(now, cancellationToken).ConfigureAwait(false);
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        TimeSpan wait = next is { } at ? Max(at - _time.GetUtcNow(), TimeSpan.Zero) : Timeout.InfiniteTimeSpan;
        await Task.WhenAny(wake.Task, Task.Delay(wait, _time, timer.Token)).ConfigureAwait(false);
        await timer.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>Delivers one job: the queue's handler. Never throws but when the queue's drain cancels it: then the
    /// job is unprocessed and stays pending as it was.</summary>
    public async Task DeliverAsync(OutboxJob job, CancellationToken cancellationToken)
    {
        int attempt = job.Attempts + 1;

        // A child of the message's commit, whose trace context the outbox kept: the trace of a message ends here. A job
        // without one (its commit was not traced) starts a trace of its own, not one under whatever is current here.
        if (!ActivityContext.TryParse(job.TraceParent, null, isRemote: true, out ActivityContext commit))
        {
            Activity.Current = null; // for this call only: an async method's changes do not flow back to its caller
        }

        using Activity? span = ChatTelemetry.Source.StartActivity("chat.webhook.deliver", ActivityKind.Client, commit);
        span?.SetTag(ChatTelemetry.MessageIdTag, job.MessageId).SetTag(ChatTelemetry.JobIdTag, job.Id).SetTag(ChatTelemetry.AttemptTag, attempt);
        try
        {
            Exception? failure = null;
            try
            {
                await Deadline.RunAsync(
                    _options.AttemptTimeout,
                    ct => PostAsync(job, attempt, ct),
                    cancellationToken,
                    _time).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw; // cut short by the drain: not an attempt
            }
            catch (Exception e)
            {
                failure = e;
                span?.SetStatus(ActivityStatusCode.Error, Describe(e));
            }

            // Recorded whatever the drain does now: a delivery that succeeded must never be sent again.
            bool recorded;
            string url = WebhookDestinations.Origin(job.Url);
            if (failure is null)
            {
                recorded = await Store.MarkDeliveredAsync(job.Id, attempt, CancellationToken.None).ConfigureAwait(false);
                LogDelivered(_logger, job.Id, url, attempt);
            }
            else if (attempt < _options.MaxAttempts && DeliveryRetryPolicy.IsRetried(failure))
            {
                TimeSpan wait = DeliveryRetryPolicy.NextWait(attempt, failure, _options, Random.Shared.NextDouble());
                recorded = await Store.RecordFailedAttemptAsync(
                    job.Id, attempt, _time.GetUtcNow() + wait, Describe(failure), CancellationToken.None).ConfigureAwait(false);
                LogRetrying(_logger, job.Id, url, attempt, wait, Describe(failure));
            }
            else
            {
                recorded = await Store.RecordFailedAttemptAsync(job.Id, attempt, null, Describe(failure), CancellationToken.None)
                    .ConfigureAwait(false);
                LogGaveUp(_logger, job.Id, url, attempt, Describe(failure));
            }

            if (!recorded)
            {
                LogTakenOver(_logger, job.Id, attempt);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The outbox could not be updated: the job stays as it was, and is tried again once its claim runs out.
            LogNotRecorded(_logger, e, job.Id);
        }
        finally
        {
            Leave(WebhookDestinations.Origin(job.Url));
            Interlocked.Decrement(ref _inFlight);
            Wake(); // a rescheduled job may be due before the feeder's current wait ends
            Interlocked.Exchange(ref _recorded, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously))
                .TrySetResult();
        }
    }

    // Once, after the last delivery: the jobs this node claimed and did not finish go to the other nodes at once.
    private async Task ReleaseClaimsAsync()
    {
        if (Interlocked.Exchange(ref _claimsReleased, 1) == 1)
        {
            return;
        }

        try
        {
            await Store.ReleaseClaimsAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The claims run out by themselves.
            LogClaimsKept(_logger, e);
        }
    }

    private async Task PostAsync(OutboxJob job, int attempt, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, job.Url)
        {
            Content = new StringContent(job.Payload, Encoding.UTF8, JsonContentType),
        };
        request.Headers.Add(DeliveryHeader, job.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add(AttemptHeader, attempt.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (job.Secret is { } secret)
        {
            request.Headers.Add(WebhookSignature.Header, WebhookSignature.Sign(secret, _time.GetUtcNow(), job.Payload));
        }

        using HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken)
            .ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new WebhookStatusException(response.StatusCode, DeliveryRetryPolicy.RetryAfter(response.Headers.RetryAfter, _time.GetUtcNow()));
        }
    }

    // Recorded in the outbox and logged: never a URL, whose query may hold a secret.
    private static string Describe(Exception exception) => exception switch
    {
        TimeoutException => "no answer within the attempt's deadline",
        WebhookStatusException status => status.Message,
        WebhookRefusedException or HttpRequestException { InnerException: WebhookRefusedException } =>
            "the destination is not one webhooks may be sent to",
        HttpRequestException { HttpRequestError: var error } => $"network failure ({error})",
        _ => exception.GetType().Name,
    };

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    // One delivery to the destination ended (or was not started): its count goes down, and away at zero.
    private void Leave(string destination)
    {
        if (_perDestination.AddOrUpdate(destination, 0, (_, running) => running - 1) == 0)
        {
            _perDestination.TryRemove(new KeyValuePair<string, int>(destination, 0));
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Webhook job {JobId} delivered to {Url} (attempt {Attempt}).")]
    private static partial void LogDelivered(ILogger logger, long jobId, string url, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook job {JobId} to {Url}: attempt {Attempt} failed ({Failure}); next in {Backoff}.")]
    private static partial void LogRetrying(ILogger logger, long jobId, string url, int attempt, TimeSpan backoff, string failure);

    [LoggerMessage(Level = LogLevel.Error, Message = "Webhook job {JobId} to {Url}: attempt {Attempt} failed ({Failure}); the job is marked failed (no attempt left, or a failure that is not retried).")]
    private static partial void LogGaveUp(ILogger logger, long jobId, string url, int attempt, string failure);

    [LoggerMessage(Level = LogLevel.Error, Message = "Webhook job {JobId}: the outcome of its attempt could not be recorded; it will be tried again.")]
    private static partial void LogNotRecorded(ILogger logger, Exception exception, long jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook job {JobId}: the outcome of attempt {Attempt} was not recorded: this node's claim on the job had run out, and another node has it.")]
    private static partial void LogTakenOver(ILogger logger, long jobId, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhooks: the claims on the jobs left could not be given up; they run out by themselves.")]
    private static partial void LogClaimsKept(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Webhooks: the outbox could not be read; trying again.")]
    private static partial void LogFeedFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Webhooks stopped: {Completed} deliveries handled in this run, {Unprocessed} left pending in the outbox.")]
    private static partial void LogStopped(ILogger logger, long completed, int unprocessed);
}
