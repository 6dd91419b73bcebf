// bug: a class owning a disposable field it created and not disposable itself (the pattern of CA1001, IDISP006)
using System;
using System.Threading;

sealed class Heartbeat
{
    private readonly Timer _timer;

    public Heartbeat(Action beat) => _timer = new Timer(_ => beat(), null, 1000, 1000);
}
