using System.Threading.Channels;
using AsyncScopes;

namespace Chat.Storage;

/// <summary>
/// The messages of a database this node alone writes (SQLite): each batch its writer committed, published by one loop
/// in commit order, so that the writer goes on to the next batch while this one is acknowledged and broadcast.
/// </summary>
internal sealed class InProcessMessageFeed : MessageFeed
{
    private readonly Channel<IReadOnlyList<StoredMessage>> _batches =
        Channel.CreateUnbounded<IReadOnlyList<StoredMessage>>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    private readonly TaskScope _scope = new(new TaskScopeOptions { Name = "chat publisher" });

    public InProcessMessageFeed(IDatabaseEvents events, ILogger logger)
        : base(events, logger)
    {
        _ = _scope.Start(PublishAsync, "publishing loop");
    }

    public override void Committed(IReadOnlyList<StoredMessage> messages)
    {
        // Fails only once disposed, when the writer has stopped.
        _batches.Writer.TryWrite(messages);
    }

    /// <summary>Publishes what was committed, then stops.</summary>
    protected override async ValueTask StopAsync()
    {
        _batches.Writer.TryComplete();
        await using (_scope.ConfigureAwait(false))
        {
            await _scope.JoinAsync().ConfigureAwait(false);
        }
    }

    private async Task PublishAsync(CancellationToken cancellationToken)
    {
        // What a message's publishing makes belongs in its post's trace (ChatService names it), not in the span of the
        // scope, which lasts as long as the store.
        System.Diagnostics.Activity.Current = null;
        await foreach (IReadOnlyList<StoredMessage> batch in _batches.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (StoredMessage message in batch)
            {
                Publish(message);
            }
        }
    }
}
