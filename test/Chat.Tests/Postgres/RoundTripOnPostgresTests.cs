using System.Net.Http.Json;
using System.Text.Json;
using Chat.Api;
using Chat.Storage;
using Chat.Tests.Support;

namespace Chat.Tests.Postgres;

public sealed class RoundTripOnPostgresTests : PostgresServiceTest
{
    [Fact]
    public async Task Two_clients_in_a_room_see_each_others_messages_in_id_order_after_their_acks_and_a_third_room_sees_none()
    {
        await using ChatClient ada = await Server.ConnectAsync("lobby", "ada");
        await using ChatClient bob = await Server.ConnectAsync("lobby", "bob");
        await using ChatClient eve = await Server.ConnectAsync("other", "eve");

        var conversation = new Conversation(ada, bob);
        for (int i = 0; i < 10; i++)
        {
            (ChatClient sender, string name) = i % 3 == 0 ? (bob, "bob") : (ada, "ada");
            await conversation.SendAsync(sender, name, $"message {i} from {name}");
        }

        List<(string Name, string Text, long Id)> sent = conversation.Sent;
        Assert.Equal(sent.Select(m => m.Id).Order(), sent.Select(m => m.Id));
        Assert.Equal(sent.Count, sent.Select(m => m.Id).Distinct().Count());

        // Both see every message once, their own included, in id order.
        foreach (ChatClient client in new[] { ada, bob })
        {
            Assert.Equal(sent, await conversation.ReceivedAsync(client));
            Assert.Empty(client.Drain());
        }

        // The other room's first frame is its own message: nothing of the lobby came before it.
        await eve.SendAsync("only here");
        long id = (await eve.ReceiveAsync("ack")).GetProperty("id").GetInt64();
        Assert.Equal(id, (await eve.ReceiveAsync("message")).GetProperty("id").GetInt64());
        Assert.Empty(eve.Drain());

        Assert.Equal(sent.Select(m => m.Text), (await Server.HistoryAsync("lobby")).Select(m => m.Text));
    }

    [Fact]
    public async Task History_pages_go_back_from_the_newest_and_stay_the_same_whatever_arrives_meanwhile()
    {
        var lobby = new List<StoredMessage>();
        for (int i = 1; i <= 7; i++)
        {
            lobby.Add(await Server.PostAsync("lobby", "ada", $"lobby {i}"));
            if (i % 3 == 0)
            {
                await Server.PostAsync("other", "bob", $"other {i}");
            }
        }

        MessagePage newest = await PageAsync("limit=3");
        Assert.Equal(["lobby 5", "lobby 6", "lobby 7"], newest.Messages.Select(m => m.Text));
        Assert.Equal(newest.Messages[0].Id, newest.NextBefore);

        // A message that arrives now is newer than every page already asked for: the next pages do not change.
        await Server.PostAsync("lobby", "bob", "late");
        MessagePage middle = await PageAsync($"limit=3&before={newest.NextBefore}");
        Assert.Equal(["lobby 2", "lobby 3", "lobby 4"], middle.Messages.Select(m => m.Text));
        MessagePage oldest = await PageAsync($"limit=3&before={middle.NextBefore}");
        Assert.Equal(["lobby 1"], oldest.Messages.Select(m => m.Text));
        Assert.Null(oldest.NextBefore);

        Assert.Equal(lobby, [.. oldest.Messages, .. middle.Messages, .. newest.Messages]);
        Assert.Equal(["lobby 6", "lobby 7", "late"], (await Server.HistoryAsync("lobby", limit: 3)).Select(m => m.Text));
        Assert.Equal(["other 3", "other 6"], (await Server.HistoryAsync("other")).Select(m => m.Text));
    }

    private async Task<MessagePage> PageAsync(string query) =>
        (await Server.Http.GetFromJsonAsync($"/api/rooms/lobby/messages?{query}", ChatJson.Default.MessagePage))!;
}
