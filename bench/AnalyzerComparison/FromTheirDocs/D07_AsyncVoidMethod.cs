// bug: an async void method that is not an event handler (the pattern of VSTHRD100, AsyncFixer03, MA0155)
using System.Threading.Tasks;

sealed class Room
{
    public async void Broadcast(string text) => await SendAllAsync(text);

    private static Task SendAllAsync(string text) => Task.CompletedTask;
}
