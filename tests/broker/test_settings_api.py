"""``GET /v1/settings``: the broker's own settings, the token never sent back."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from broker.api import ApiRunner, create_app
from broker.service import Broker, BrokerConfig
from broker.settings_api import SettingList
from broker.store import Store
from shift.settings import SETTINGS, load_settings


async def test_settings_answer_every_setting_and_mask_the_token(tmp_path) -> None:
    settings = load_settings(
        {"state_dir": str(tmp_path / "brokerstate"), "token": "t0ps3cret", "halving": "plain"},
        environ={},
    )
    store = Store(tmp_path / "shift.sqlite")
    await store.open()
    broker = Broker(BrokerConfig("tcp://127.0.0.1:0"), store)
    await broker.start()
    runner = ApiRunner(create_app(broker, token=settings["token"], settings=settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://{host}:{port}/v1/settings") as r:
                assert r.status == 401
            headers = {"Authorization": "Bearer t0ps3cret"}
            async with s.get(f"http://{host}:{port}/v1/settings", headers=headers) as r:
                assert r.status == 200
                raw = await r.text()
                body = SettingList.model_validate_json(raw)
    finally:
        await runner.cleanup()
        await broker.close()
    values = {item.name: item.value for item in body.settings}
    assert list(values) == [s.name for s in SETTINGS]
    assert values["state_dir"] == str(tmp_path / "brokerstate")
    assert values["halving"] == "plain" and values["token"] == "(set)"
    assert "t0ps3cret" not in raw
