// correct: async void as the handler of an event (what async void exists for), its failures caught
using System;
using System.Threading.Tasks;

sealed class Reconnector
{
    public Reconnector(Connection connection) => connection.Closed += OnClosed;

    private async void OnClosed(object? sender, EventArgs e)
    {
        try
        {
            await Task.Delay(1000);
        }
        catch (Exception failure)
        {
            Console.Error.WriteLine(failure);
        }
    }
}

sealed class Connection
{
    public event EventHandler? Closed;

    public void Close() => Closed?.Invoke(this, EventArgs.Empty);
}
