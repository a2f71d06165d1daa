"""Packaging for cinema_api: a Pyramid back office API for cinemas."""

import os

from setuptools import find_packages, setup

HERE = os.path.abspath(os.path.dirname(__file__))
with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
    README = f.read()

# Every runtime dependency is pinned: these versions are tested together.
requires = [
    "pyramid==2.1",
    "pyramid_retry==2.1.1",  # a deadlocked request runs again on a new request object
    # pyramid and cornice import pkg_resources, which setuptools 82 removed; from
    # 80.9 on, that import prints a UserWarning on stderr before logging is configured (non-JSON
    # lines in LOG_FORMAT=json output). 80.8 still warns, but as a DeprecationWarning: silent.
    "setuptools<80.9",
    "waitress==3.0.2",
    "pony==0.7.20",
    "cornice==6.1.0",
    "colander==2.0",
    "PyJWT==2.15.1",
    "bcrypt==5.0.0",
    "dogpile.cache==1.5.0",
    "redis==8.1.0",
    "hiredis==3.5.0",  # redis-py's fast reply parser: about 8 % more cached reads on Redis
    "psycopg2-binary==2.9.13",
    "yoyo-migrations==9.0.0",
    "swagger-ui-py==25.7.1",  # Swagger UI 5 assets (renders OpenAPI 3.1), served by the app itself
    "PyYAML==6.0.3",  # the OpenAPI document as YAML
    "python-dotenv==1.2.4",
    "prometheus-client==0.26.0",  # GET /metrics: the Prometheus text exposition
]

tests_require = [
    "WebTest==3.0.7",
    "pytest==9.2.0",
    "openapi-spec-validator==0.9.0",
    "ruff==0.17.5",  # the linter of .ci/run (ruff.toml)
    "coverage==7.17.3",  # .ci/run's coverage floor (.coveragerc)
]

setup(
    name="cinema_api",
    version="0.1.0",
    description="Cinema back office API: movies, screenings, accounts and tickets",
    long_description=README,
    long_description_content_type="text/markdown",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Programming Language :: Python :: 3.14",
        "Framework :: Pyramid",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Application",
    ],
    license="MIT",
    packages=find_packages(exclude=["tests", "tests.*"]),
    include_package_data=True,
    zip_safe=False,
    python_requires=">=3.11,<3.15",
    install_requires=requires,
    extras_require={"test": tests_require},
    entry_points={
        "paste.app_factory": ["main = cinema_api:main"],
        "paste.server_runner": ["main = cinema_api.runtime.server:serve"],
        "console_scripts": [
            "cinema-migrate = cinema_api.scripts.migrate:main",
            "cinema-admin = cinema_api.scripts.admin:main",
            "cinema-seed = cinema_api.scripts.seed:main",
            "cinema-openapi = cinema_api.scripts.openapi:main",
        ],
    },
)
