"""The Telegram bot in a full conversation on the real PostgreSQL, against `LocalBotApi`: a loopback HTTP
peer that speaks the Bot API (getMe, deleteWebhook, getUpdates, sendMessage); Telegram is unreachable here."""

import asyncio
import json
import logging
import os
import socket
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from tradekit.execution.book import AuditRow, FillRow, LastPriceRow, OrderRow, PositionRow, set_kill_switch
from tradekit.jobs import JobRun, JobStatus
from tradekit.telegram import BotConfig, LocalBotApi, TradekitBot

READER, ADMIN, STRANGER = 11, 99, 5


def _book_fill(engine: Engine, account: str, group: str) -> None:
    "What the execution service writes for a filled market order: order, fill, position, last price, audit."
    now, order_id, fill_id = datetime.now(UTC), uuid.uuid4(), uuid.uuid4()
    trade = dict(order_id=order_id, account=account, symbol="BTC", side="buy", qty=2)
    with Session(engine) as s:
        order = dict(status="filled", filled_qty=2, avg_price=100.0, fills=1, created_at=now, updated_at=now)
        s.add(OrderRow(**trade, **order, group_id=group))
        s.add(FillRow(**trade, fill_id=fill_id, price=100.0, fee=0.1, time=now))
        s.add(
            PositionRow(
                account=account, symbol="BTC", qty=2, avg_price=100.0, fees=0.1, cash=-200.1, updated_at=now
            )
        )
        s.add(LastPriceRow(group_id=group, symbol="BTC", price=101.0, time=now))
        detail = json.dumps({"fill_id": str(fill_id), "qty": 2, "price": 100.0, "fee": 0.1})
        s.add(
            AuditRow(
                time=now,
                recorded_at=now,
                kind="fill",
                account=account,
                symbol="BTC",
                ref=order_id,
                detail=detail,
            )
        )
        s.commit()


def _failed_job(engine: Engine, job: str) -> None:
    now = datetime.now(UTC)
    run = JobRun(
        job=job,
        status=JobStatus.failed,
        started_at=now,
        finished_at=now,
        parameters={},
        error="ValueError: boom\nin cell 3",
        pid=os.getpid(),
        host=socket.gethostname(),
    )
    with Session(engine) as s:
        s.add(run)
        s.commit()


async def _conversation(engine: Engine, peer: LocalBotApi, account: str, group: str) -> TradekitBot:
    cfg = BotConfig(
        chat_ids={READER},
        admin_chat_ids={ADMIN},
        account=account,
        group_id=group,
        kill_scope=group,
        messages_per_minute=6,
        poll_seconds=0.05,
        base_url=peer.base_url,
    )
    bot, stop = TradekitBot(engine, peer.token, cfg), asyncio.Event()
    task = asyncio.create_task(bot.run(stop))

    async def ask(chat: int, text: str, expect: str) -> str:
        mark = peer.say(chat, text)
        return await asyncio.to_thread(peer.wait_sent, chat, expect, 10.0, mark)

    try:
        assert "open orders: 0" in await ask(READER, "/status", account)
        assert await ask(STRANGER, "/pnl", "not authorised")
        _book_fill(engine, account, group)
        for chat in (READER, ADMIN):  # pushed to every allowed chat
            await asyncio.to_thread(peer.wait_sent, chat, f"fill: buy 2 BTC @ 100 ({account})")
        assert (await ask(READER, "/positions", "BTC:")) == "BTC: 2 @ 100.00, last 101.00, P&L +1.90"
        assert "P&L +1.90" in await ask(READER, "/pnl", "realised")
        assert "buy 2 BTC filled" in await ask(READER, "/orders", "BTC")
        assert await ask(READER, "/kill", "only admin chats")
        code = (await ask(ADMIN, "/kill", "/confirm")).split("/confirm ")[1].split()[0]
        assert await ask(ADMIN, f"/confirm {'1111' if code == '0000' else '0000'}", "nothing confirmed")
        code = (
            (await ask(ADMIN, "/kill", "/confirm")).split("/confirm ")[1].split()[0]
        )  # a wrong code spent it
        await ask(ADMIN, f"/confirm {code}", "kill switch ON:")
        await asyncio.to_thread(peer.wait_sent, READER, f"kill switch ON: telegram /kill from chat {ADMIN}")
        assert "HALTED" in await ask(READER, "/status", "HALTED")
        _failed_job(engine, f"job-{account}")
        await asyncio.to_thread(peer.wait_sent, READER, f"job job-{account} failed")
        sent = [await bot.notify(f"burst {i}") for i in range(8)]  # each chat has at most 6 tokens, 3 spent
        assert sum(sent) <= 2 * 3 and bot._suppressed[READER] >= 5
        return bot
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def test_full_conversation_with_fill_notification(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")  # httpx logs every request URL, which holds the token
    account, group = f"tg-{uuid.uuid4().hex[:8]}", f"tg-group-{uuid.uuid4().hex[:8]}"
    try:
        with LocalBotApi() as peer:
            asyncio.run(asyncio.wait_for(_conversation(engine, peer, account, group), 40))
    finally:
        set_kill_switch(engine, False, "test over", group)
    assert {"getMe", "getUpdates", "sendMessage"} <= set(peer.calls)
    assert not [m for m in peer.sent if m["chat_id"] == STRANGER and "P&L" in m["text"]]
    assert "/bot***/getUpdates" in caplog.text and peer.token not in caplog.text
