using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using System.Threading.RateLimiting;

namespace AsyncScopes;

/// <summary>
/// A task queue that loses nothing: a fixed number of workers run a handler over the items, and completing the queue
/// waits for their work and accounts for every accepted item exactly once, as completed, failed or unprocessed.
/// </summary>
/// <typeparam name="T">The work item type.</typeparam>
/// <remarks>
/// <para>The workers are children of a <see cref="TaskScope"/> owned by the queue: none outlives
/// <see cref="CompleteAsync"/> or <see cref="DisposeAsync"/>. A handler that throws never stops the other workers;
/// its item is counted as failed and handed to <see cref="WorkQueueOptions{T}.OnError"/>. The queue keeps the last
/// <see cref="WorkQueueOptions{T}.MaxRetainedFailures"/> failed items for <see cref="WorkQueueResult{T}.Failed"/>, so
/// that a long-lived queue whose handler keeps failing holds a bounded number of them.</para>
/// <para>Cancellation: a handler receives a token that is cancelled by the token of <see cref="CompleteAsync"/>, by
/// the queue's own token, or by the drain deadline of <see cref="DisposeAsync"/>. Once it is cancelled no new item
/// starts; an item whose handler then ends with <see cref="OperationCanceledException"/> is unprocessed, not
/// failed. An <see cref="OperationCanceledException"/> from any other token is a failure.</para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix", Justification = "It is a queue; the name is the contract's.")]
[DebuggerDisplay("WorkQueue {_options.Name}: {Statistics}")]
public sealed class WorkQueue<T> : IAsyncDisposable
{
    private static readonly KeyValuePair<string, object?> KindTag = new(ScopeMetrics.KindTag, "WorkQueue");

    private readonly Func<T, CancellationToken, Task> _handler;
    private readonly WorkQueueOptions<T> _options;
    private readonly Channel<T> _channel;
    private readonly TaskScope _workers;
    private readonly RetainedFailures<T> _failed;
    private readonly ConcurrentQueue<T> _unprocessed = new();
    private readonly Lock _lock = new();
    private readonly ScopeTracker? _tracker;
    private readonly MetricsSource _metrics;
    private readonly KeyValuePair<string, object?> _queueTag;
    private readonly CancellationTokenRegistration _queueTokenRegistration;
    private readonly ProducerSpans? _producerSpans;

    private readonly WorkerCounters[] _workerCounts;
    private volatile bool _completing;
    private Task<WorkQueueResult<T>>? _completion;

    /// <summary>Creates the queue and starts its workers.</summary>
    /// <param name="handler">Processes one item; it receives the queue's stop token (see remarks of
    /// <see cref="WorkQueue{T}"/>).</param>
    /// <param name="options">The options, copied: changing them afterwards changes nothing here; <see langword="null"/> for the defaults.</param>
    /// <param name="cancellationToken">The queue's own token: cancelling it stops the queue as a cancelled
    /// <see cref="CompleteAsync"/> would: no more items are accepted, running handlers are cancelled, and what is left
    /// becomes unprocessed. <see cref="CompleteAsync"/> still reports the result.</param>
    /// <exception cref="ArgumentNullException"><paramref name="handler"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException"><see cref="WorkQueueOptions{T}.TimeProvider"/> is null.</exception>
    public WorkQueue(Func<T, CancellationToken, Task> handler, WorkQueueOptions<T>? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        options = options?.Copy() ?? new WorkQueueOptions<T>();
        options.ThrowIfInvalid();
        _handler = handler;
        _options = options;
        _failed = new RetainedFailures<T>(options.MaxRetainedFailures);
        _queueTag = new KeyValuePair<string, object?>(ScopeMetrics.QueueTag, options.Name ?? string.Empty);
        // The channels' defaults: any number of readers and writers, and a full bounded channel makes writers wait.
        _channel = options.Capacity == 0 ? Channel.CreateUnbounded<T>() : Channel.CreateBounded<T>(options.Capacity);
        _producerSpans = options.TraceItems ? new ProducerSpans() : null;
        _tracker = ScopeTracker.StartIfTracking("WorkQueue", options.Name);
        ScopeMetrics.OpenScopes.Add(1, KindTag);
        _metrics = new MetricsSource(this);
        ScopeMetrics.Register(_metrics);

        _workers = new TaskScope(new TaskScopeOptions { FailureMode = TaskScopeFailureMode.WaitForAll, Name = options.Name }, tracked: false, CancellationToken.None);
        _workerCounts = new WorkerCounters[options.Workers];
        for (int i = 0; i < _workerCounts.Length; i++)
        {
            var worker = _workerCounts[i] = new WorkerCounters();
            _ = _workers.Start(stop => WorkAsync(worker, stop));
        }

        if (cancellationToken.CanBeCanceled)
        {
            _queueTokenRegistration = cancellationToken.UnsafeRegister(static state => ((WorkQueue<T>)state!).Stop(), this);
        }
    }

    /// <summary>The copy of the options this queue was created with.</summary>
    internal WorkQueueOptions<T> Options => _options;

    /// <summary>True once a completion began (<see cref="CompleteAsync"/> or <see cref="DisposeAsync"/>).</summary>
    internal bool IsCompleting => _completing;

    /// <summary>A snapshot of the queue's counts (each read atomically, the set not as one).</summary>
    public WorkQueueStatistics Statistics
    {
        get
        {
            int running = 0;
            long completed = 0;
            long failed = 0;
            foreach (var worker in _workerCounts)
            {
                running += Volatile.Read(ref worker.Running);
                completed += Volatile.Read(ref worker.Completed);
                failed += Volatile.Read(ref worker.Failed);
            }

            return new WorkQueueStatistics(_channel.Reader.Count, running, completed, failed);
        }
    }

    /// <summary>Accepts an item; with a bounded <see cref="WorkQueueOptions{T}.Capacity"/>, waits for room first.</summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels the wait for room; a cancelled enqueue did not accept the item.</param>
    /// <returns>A task that completes when the item is accepted; synchronously when there is room.</returns>
    /// <exception cref="InvalidOperationException">Completion started: the item was not accepted. Thrown by the call
    /// itself when completion started before it; through the returned task when it started while the call waited for
    /// room.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public ValueTask EnqueueAsync(T item, CancellationToken cancellationToken = default)
    {
        if (TryWrite(item))
        {
            return default;
        }

        ThrowIfCompleting();
        return WaitAndEnqueueAsync(item, cancellationToken);
    }

    /// <summary>Accepts an item if there is room now.</summary>
    /// <param name="item">The item.</param>
    /// <returns><see langword="false"/> when the queue is full or completion started: the item was not accepted.</returns>
    public bool TryEnqueue(T item) => TryWrite(item);

    /// <summary>
    /// Stops accepting items and waits until every accepted item is completed, failed or (when cancelled)
    /// unprocessed, and every worker has ended.
    /// </summary>
    /// <param name="cancellationToken">Cancels the running handlers; their items and the pending ones come back as
    /// <see cref="WorkQueueResult{T}.Unprocessed"/>. The returned task still completes normally.</param>
    /// <returns>The same result for every call: the account of every accepted item.</returns>
    public Task<WorkQueueResult<T>> CompleteAsync(CancellationToken cancellationToken = default)
    {
        var completion = BeginCompletion();
        if (cancellationToken.CanBeCanceled && !completion.IsCompleted)
        {
            var registration = cancellationToken.UnsafeRegister(static state => ((WorkQueue<T>)state!).Stop(), this);
            _ = completion.ContinueWith(
                static (_, state) => ((CancellationTokenRegistration)state!).Dispose(),
                registration,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }

        return completion;
    }

    /// <summary>
    /// Completes the queue, allowing <see cref="WorkQueueOptions{T}.DrainTimeout"/> for the work to finish before the
    /// running handlers are cancelled. Call <see cref="CompleteAsync"/> first to see what became of the items.
    /// </summary>
    /// <returns>A task that completes when every worker has ended; it never faults.</returns>
    public async ValueTask DisposeAsync()
    {
        using var deadline = new CancellationTokenSource(_options.DrainTimeout, _options.TimeProvider);
        await CompleteAsync(deadline.Token).ConfigureAwait(false);
    }

    private bool TryWrite(T item)
    {
        if (_producerSpans is { } spans)
        {
            return !_completing && spans.TryWrite(_channel.Writer, item);
        }

        return !_completing && _channel.Writer.TryWrite(item);
    }

    private async ValueTask WaitAndEnqueueAsync(T item, CancellationToken cancellationToken)
    {
        while (true)
        {
            // False once completion began (the channel is completed without an exception, after _completing is set):
            // then TryWrite fails and ThrowIfCompleting throws. True with no room left means another writer took it.
            await _channel.Writer.WaitToWriteAsync(cancellationToken).ConfigureAwait(false);
            if (TryWrite(item))
            {
                return;
            }

            ThrowIfCompleting();
        }
    }

    private void ThrowIfCompleting()
    {
        if (_completing)
        {
            throw new InvalidOperationException(
                $"The work queue{(_options.Name is null ? string.Empty : " '" + _options.Name + "'")} is completing: it accepts no more items.");
        }
    }

    private Task<WorkQueueResult<T>> BeginCompletion()
    {
        lock (_lock)
        {
            if (_completion is null)
            {
                _completing = true;
                _channel.Writer.TryComplete();
                _completion = CompleteCoreAsync();
            }

            return _completion;
        }
    }

    // The only way the workers' token is cancelled, and always after the channel is completed: a worker waiting for
    // an item is woken by the completion, so its wait needs no token (see WorkAsync).
    private void Stop()
    {
        BeginCompletion();
        _workers.Cancel();
    }

    private async Task<WorkQueueResult<T>> CompleteCoreAsync()
    {
        // Never run the wait on the caller's stack, inside the lock; and never on the caller's context, which
        // Task.Yield would post to (a caller blocking on a UI thread would then deadlock).
        await Task.CompletedTask.ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        await _workers.JoinAsync().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        while (_channel.Reader.TryRead(out var item))
        {
            _unprocessed.Enqueue(item);
        }

        _queueTokenRegistration.Dispose();
        _tracker?.Close();
        ScopeMetrics.OpenScopes.Add(-1, KindTag);
        ScopeMetrics.Unregister(_metrics);
        var counts = Statistics;
        return new WorkQueueResult<T>(counts.Completed, counts.Failed, _failed.ToArray(), [.. _unprocessed]);
    }

    // One worker: takes items until the channel is completed and empty, or the queue is stopped. Counts are kept per
    // worker, written by that worker only, so that workers never contend on them.
    private async Task WorkAsync(WorkerCounters worker, CancellationToken stop)
    {
        var reader = _channel.Reader;

        // Waits without the stop token: a stop completes the channel first (see Stop), which ends the wait, and the
        // token is checked before each item. A wait with a token would cost a registration and an operation object
        // each time a worker runs out of items.
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            // A queue that traces its items reads each with the trace context it was enqueued in; the others read the
            // channel alone (see ProducerSpans).
            T? item;
            ActivityContext producer = default;
            while (_producerSpans is null ? reader.TryRead(out item) : _producerSpans.TryRead(reader, out item, out producer))
            {
                if (stop.IsCancellationRequested)
                {
                    System.Diagnostics.Debug.Assert(_completing, "The workers are stopped only after the channel is completed.");
                    _unprocessed.Enqueue(item);
                    return;
                }

                Volatile.Write(ref worker.Running, 1);
                Activity? span = _producerSpans is null ? null : ScopeTracing.StartItemSpan(_options.Name, producer);
                RateLimitLease? permit = null;
                Task? handling;
                try
                {
                    if (_options.Limiter is { } limiter)
                    {
                        permit = await Permits.AcquireAsync(limiter, _options.Name, stop).ConfigureAwait(false);
                    }

                    handling = span is null ? _handler(item, stop) : HandleInSpan(item, span, stop);
                }
#pragma warning disable CA1031 // Not swallowed: FinishAsync classifies it as the item's outcome.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    handling = Task.FromException(e);
                }

                // A handler that already completed is counted here: no state machine per item on the common path.
                if (handling is { IsCompletedSuccessfully: true })
                {
                    permit?.Dispose();
                    CountCompleted(worker);
                    Volatile.Write(ref worker.Running, 0);
                    if (span is not null)
                    {
                        ScopeTracing.StopItemSpan(span, "completed");
                    }
                }
                else
                {
                    await FinishAsync(worker, item, handling, permit, span, stop).ConfigureAwait(false);
                }
            }
        }
    }

    // Runs the handler with the item's span current, so that the handler's spans are its children; the worker's own
    // current span is as it was when the handler returns (its continuations keep the item's).
    private Task HandleInSpan(T item, Activity span, CancellationToken stop)
    {
        var current = Activity.Current;
        Activity.Current = span;
        try
        {
            return _handler(item, stop);
        }
        finally
        {
            Activity.Current = current;
        }
    }

    // The outcome of a handler that is still running, failed or was cancelled (or of an item whose wait for a permit
    // was); never throws, so the worker goes on. The permit goes back as the handler ends, before the outcome counts.
    private async Task FinishAsync(WorkerCounters worker, T item, Task? handling, RateLimitLease? permit, Activity? span, CancellationToken stop)
    {
        try
        {
            try
            {
                await handling!.ConfigureAwait(false); // a handler that returned null fails with NullReferenceException
            }
            finally
            {
                permit?.Dispose();
            }

            CountCompleted(worker);
            if (span is not null)
            {
                ScopeTracing.StopItemSpan(span, "completed");
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            _unprocessed.Enqueue(item);
            if (span is not null)
            {
                ScopeTracing.StopItemSpan(span, "unprocessed");
            }
        }
#pragma warning disable CA1031 // A failing handler is the item's outcome; it must never stop the worker.
        catch (Exception e)
#pragma warning restore CA1031
        {
            if (span is not null)
            {
                ScopeTracing.StopItemSpan(span, "failed", e);
            }

            await ReportErrorAsync(item, e).ConfigureAwait(false);
            _failed.Add(item, e);
            Volatile.Write(ref worker.Failed, worker.Failed + 1);
            if (ScopeMetrics.QueueFailed.Enabled)
            {
                ScopeMetrics.QueueFailed.Add(1, _queueTag);
            }
        }
        finally
        {
            Volatile.Write(ref worker.Running, 0);
        }
    }

    private void CountCompleted(WorkerCounters worker)
    {
        Volatile.Write(ref worker.Completed, worker.Completed + 1);
        if (ScopeMetrics.QueueCompleted.Enabled)
        {
            ScopeMetrics.QueueCompleted.Add(1, _queueTag);
        }
    }

    private async ValueTask ReportErrorAsync(T item, Exception failure)
    {
        if (_options.OnError is not { } onError)
        {
            return;
        }

        try
        {
            await onError(item, failure).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // An error callback that fails is reported; the item stays failed with the handler's exception.
        catch (Exception e)
#pragma warning restore CA1031
        {
            ScopeDiagnostics.ReportUnobserved(_options.Name, e);
        }
    }

    /// <summary>
    /// The trace context current at each enqueue of a queue that traces its items, in the channel's order: the n-th
    /// item read is paired with the n-th context written. Writes and reads of such a queue take this lock around the
    /// channel's own operations, so that the pairs stay in step; a queue that does not trace keeps the channel alone,
    /// and its items cost nothing more (an entry carrying a context with every item made every queue slower).
    /// </summary>
    /// <remarks>The workers read with <see cref="ChannelReader{T}.TryRead"/> only, never a pending read: no item
    /// bypasses the channel's buffer straight to a waiting reader, so the buffer and the contexts hold the same count.
    /// The contexts are values: a waiting item keeps no span alive.</remarks>
    private sealed class ProducerSpans
    {
        private readonly Lock _lock = new();
        private readonly Queue<ActivityContext> _contexts = new();

        public bool TryWrite(ChannelWriter<T> writer, T item)
        {
            var context = Activity.Current?.Context ?? default;
            lock (_lock)
            {
                if (!writer.TryWrite(item))
                {
                    return false;
                }

                _contexts.Enqueue(context);
                return true;
            }
        }

        public bool TryRead(ChannelReader<T> reader, [MaybeNullWhen(false)] out T item, out ActivityContext producer)
        {
            lock (_lock)
            {
                if (!reader.TryRead(out item))
                {
                    producer = default;
                    return false;
                }

                producer = _contexts.Dequeue();
                return true;
            }
        }
    }

    /// <summary>Reads the queue depth for the meter; held weakly there.</summary>
    private sealed class MetricsSource(WorkQueue<T> queue) : ScopeMetrics.IObservedSource
    {
        private readonly WeakReference<WorkQueue<T>> _queue = new(queue);

        public void Observe(ScopeMetrics.PoolMeasure measure, List<Measurement<long>> measurements)
        {
            if (measure == ScopeMetrics.PoolMeasure.QueueDepth && _queue.TryGetTarget(out var target))
            {
                measurements.Add(new Measurement<long>(target._channel.Reader.Count, target._queueTag));
            }
        }
    }
}
