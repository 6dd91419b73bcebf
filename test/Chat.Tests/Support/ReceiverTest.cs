namespace Chat.Tests.Support;

/// <summary>A test of webhook deliveries: a <see cref="WebhookReceiver"/> on 127.0.0.1, and no server until the test
/// starts one with its own settings.</summary>
public abstract class ReceiverTest : ServiceTest
{
    internal WebhookReceiver Receiver { get; private set; } = null!;

    public override async Task InitializeAsync() => Receiver = Own(await WebhookReceiver.StartAsync());
}
