using System.Diagnostics;

namespace Chat.Storage;

/// <summary>
/// A message posted on this node, waiting for the <see cref="MessageWriter"/> to store it with the others posted
/// meanwhile. <see cref="Stored"/> completes once its batch has committed, or fails when it was not stored.
/// </summary>
/// <param name="room">The room, already checked.</param>
/// <param name="name">The sender's name, already checked.</param>
/// <param name="text">The text, already checked.</param>
/// <param name="acknowledge">Tells the sender its message is stored: called by whoever hears of the commit
/// (<see cref="IDatabaseEvents.MessageCommitted"/>), before the message's broadcast; null when no one waits for that
/// (an HTTP post is answered when <see cref="Stored"/> completes).</param>
/// <param name="commit">The span of the post's commit, which the webhook deliveries and the broadcast continue; null
/// when it is not traced.</param>
internal sealed class PostedMessage(string room, string name, string text, Action<StoredMessage>? acknowledge = null, Activity? commit = null)
{
    private const int Waiting = 0;
    private const int Taken = 1;
    private const int Withdrawn = 2;

    private readonly TaskCompletionSource<StoredMessage> _stored = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _handedOn = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _state;

    public string Room { get; } = room;

    public string Name { get; } = name;

    public string Text { get; } = text;

    public Action<StoredMessage>? Acknowledge { get; } = acknowledge;

    /// <summary>The commit's span, as a parent for what follows it.</summary>
    public ActivityContext Commit { get; } = commit?.Context ?? default;

    /// <summary>The commit's W3C trace context, kept with the outbox jobs; null when not traced.</summary>
    public string? TraceParent { get; } = commit is { IdFormat: ActivityIdFormat.W3C } ? commit.Id : null;

    /// <summary>The stored message, once its batch has committed. Fails with what the database threw when it was not
    /// stored; cancelled when it was withdrawn before any batch took it.</summary>
    public Task<StoredMessage> Stored => _stored.Task;

    /// <summary>
    /// Completes once nothing more will be done for this post's sender: the events heard of its commit (its
    /// <see cref="Acknowledge"/> has run), or it was not stored, or this node will never hear of it as its own (its
    /// commit's outcome stayed unknown, or the store closed first). Never faults.
    /// </summary>
    /// <remarks>A sender's answers keep its order when the answer to a later message waits for this.</remarks>
    public Task HandedOn => _handedOn.Task;

    /// <summary>When the message was posted (a <see cref="Stopwatch"/> timestamp: the writer's limit is real time, as
    /// the pool's acquire timeout is); a message that waited for a batch longer than that limit is not stored.</summary>
    public long PostedAt { get; internal set; }

    /// <summary>Withdraws the message if no batch has taken it yet: then it will never be stored.</summary>
    /// <returns>False when a batch took it first: it is stored or fails as its batch does.</returns>
    public bool TryWithdraw(CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _state, Withdrawn, Waiting) != Waiting)
        {
            return false;
        }

        _stored.TrySetCanceled(cancellationToken);
        _handedOn.TrySetResult();
        return true;
    }

    /// <summary>Takes the message into a batch, unless it was withdrawn.</summary>
    internal bool TryTake() => Interlocked.CompareExchange(ref _state, Taken, Waiting) == Waiting;

    internal void Complete(StoredMessage message) => _stored.TrySetResult(message);

    internal void Fail(Exception exception)
    {
        _stored.TrySetException(exception);
        _handedOn.TrySetResult();
    }

    internal void MarkHandedOn() => _handedOn.TrySetResult();
}
