"""The callback's round trips: GetSnapshotUrls' first page travels beside GetSnapshotJob, the other pages
after it at once, and the URLs and errors are those of fetching the pages one after the other."""
from __future__ import annotations

import threading

import pytest

from snapshot_pipeline.credentials import Credentials
from snapshot_pipeline.domain import SnapshotUrls
from snapshot_pipeline.ice import URL_PAGE_SIZE, IceClient
from snapshot_pipeline.ports import IceError
from snapshot_pipeline.retry import Deadline

TOTAL = 95  # four pages: 30, 30, 30, 5


class PagesOfIce:
    """GetSnapshotUrls pages of a job with ``TOTAL`` URLs, and a record of every page asked for."""

    def __init__(self, fail_page: int | None = None):
        self.asked: list[tuple[str, int, int]] = []
        self.fail_page = fail_page
        self.first_page_asked = threading.Event()
        self._lock = threading.Lock()

    def page(self, job_id: str, page_number: int, *, timeout_s: int = 3600) -> SnapshotUrls:
        with self._lock:
            self.asked.append((job_id, page_number, timeout_s))
        if page_number == 1:
            self.first_page_asked.set()
        if page_number == self.fail_page:
            raise IceError("Throttling.User", f"page {page_number} refused", status_code=503)
        start = (page_number - 1) * URL_PAGE_SIZE
        urls = tuple(f"https://example.com/{job_id}/{i:05d}.jpg" for i in range(start, min(start + URL_PAGE_SIZE,
                                                                                              TOTAL)))
        return SnapshotUrls(TOTAL, urls, None)


def client_over(pages: PagesOfIce) -> IceClient:
    ice = IceClient(endpoint="ice.invalid", credentials=Credentials("ak", "sk"), region="cn-shanghai",
                    deadline=Deadline.after(30))
    ice.get_snapshot_urls_page = pages.page  # type: ignore[method-assign]
    return ice


def test_the_first_page_is_asked_for_before_the_job_answers():
    pages = PagesOfIce()
    with client_over(pages).first_urls_page_ahead("job-1", timeout_s=600) as ice:
        # What GetSnapshotJob would take: the page is already on its way meanwhile.
        assert pages.first_page_asked.wait(10)
        urls = ice.get_all_snapshot_urls("job-1", timeout_s=600)
    assert pages.asked.count(("job-1", 1, 600)) == 1
    assert sorted(pages.asked) == [("job-1", n, 600) for n in (1, 2, 3, 4)]
    assert urls == client_over(PagesOfIce()).get_all_snapshot_urls("job-1", timeout_s=600)
    assert list(urls.urls) == [f"https://example.com/job-1/{i:05d}.jpg" for i in range(TOTAL)]


def test_a_failed_first_page_fails_where_the_urls_are_asked_for():
    with client_over(PagesOfIce(fail_page=1)).first_urls_page_ahead("job-1", timeout_s=600) as ice:
        with pytest.raises(IceError, match="page 1 refused"):
            ice.get_all_snapshot_urls("job-1", timeout_s=600)


def test_a_failed_later_page_fails_as_before():
    with client_over(PagesOfIce(fail_page=3)).first_urls_page_ahead("job-1", timeout_s=600) as ice:
        with pytest.raises(IceError, match="page 3 refused"):
            ice.get_all_snapshot_urls("job-1", timeout_s=600)


def test_a_page_nobody_needs_is_waited_for_and_dropped():
    pages = PagesOfIce(fail_page=1)
    with client_over(pages).first_urls_page_ahead("job-1", timeout_s=600):
        pass  # a job that is not finished, or not ours: no URLs needed, and the page's error is nobody's
    assert pages.asked == [("job-1", 1, 600)]


def test_other_jobs_and_timeouts_are_fetched_as_usual():
    pages = PagesOfIce()
    with client_over(pages).first_urls_page_ahead("job-1", timeout_s=600) as ice:
        ice.get_all_snapshot_urls("job-2", timeout_s=600)
        ice.get_all_snapshot_urls("job-1", timeout_s=60)
    assert ("job-2", 1, 600) in pages.asked and ("job-1", 1, 60) in pages.asked
    assert pages.asked.count(("job-1", 1, 600)) == 1
