<#
.SYNOPSIS
  Build the Chroma Studio installer for Windows (x64).

.DESCRIPTION
  1. Creates a build environment (Python 3.12 via the py launcher) with packaging\requirements-build.txt
     (PyInstaller, the uv binary from PyPI, PySide6-Essentials, nvidia-ml-py, Pillow).
  2. Runs packaging\build_bundle.py: builds Chroma Studio's wheel, stages uv.exe, freezes the launcher.
  3. Compiles packaging\windows\chroma-studio.iss with Inno Setup's ISCC.exe.
  Output: build\packaging\ChromaStudio-<version>-windows-x64-setup.exe

.PARAMETER SignCommand
  Optional Authenticode signing command for Inno Setup, with $f for the file, e.g.
  'signtool.exe sign /fd SHA256 /tr http://timestamp.digicert.com /td SHA256 /a $f'
  (see packaging\SIGNING.md). Signs the launcher, uv.exe, the setup program and the uninstaller.

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
#>
param(
    [string]$PythonVersion = "3.12",
    [string]$Out = "",
    [string]$Iscc = "",
    [string]$SignCommand = "",
    [switch]$AllowIncompleteWheel
)
$ErrorActionPreference = "Stop"
$Root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
if (-not $Out) { $Out = Join-Path $Root "build\packaging" }
New-Item -ItemType Directory -Force -Path $Out | Out-Null
$Out = (Resolve-Path $Out).Path
$Venv = Join-Path $Out "build-venv"
$Python = Join-Path $Venv "Scripts\python.exe"

function Invoke-Checked([string]$Exe, [string[]]$Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe failed with exit code $LASTEXITCODE" }
}

if (-not (Test-Path $Python)) {
    Invoke-Checked "py" @("-$PythonVersion", "-m", "venv", $Venv)
}
Invoke-Checked $Python @("-m", "pip", "install", "--disable-pip-version-check", "-r", (Join-Path $Root "packaging\requirements-build.txt"))

$BundleArgs = @((Join-Path $Root "packaging\build_bundle.py"), "--source", $Root, "--out", $Out)
if ($AllowIncompleteWheel) { $BundleArgs += "--allow-incomplete-wheel" }
Invoke-Checked $Python $BundleArgs

$Manifest = Get-Content (Join-Path $Out "stage\bundle.json") -Raw | ConvertFrom-Json
$Dist = Join-Path $Out "dist\ChromaStudio"
if (-not (Test-Path (Join-Path $Dist "ChromaStudio.exe"))) { throw "PyInstaller output missing: $Dist" }

if (-not $Iscc) {
    $Found = Get-Command "iscc.exe" -ErrorAction SilentlyContinue
    if ($Found) { $Iscc = $Found.Source }
    else {
        foreach ($Candidate in @(
                (Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe"),
                (Join-Path $env:ProgramFiles "Inno Setup 6\ISCC.exe"),
                (Join-Path $env:LOCALAPPDATA "Programs\Inno Setup 6\ISCC.exe"))) {
            if (Test-Path $Candidate) { $Iscc = $Candidate; break }
        }
    }
}
if (-not $Iscc) { throw "Inno Setup 6 (ISCC.exe) not found: install it (e.g. winget install JRSoftware.InnoSetup) or pass -Iscc" }

$IsccArgs = @(
    "/DAppVersion=$($Manifest.app_version)",
    "/DDistDir=$Dist",
    "/DIconFile=$(Join-Path $Out 'icons\chroma-studio.ico')",
    "/DOutputDir=$Out"
)
if ($SignCommand) {
    $IsccArgs += "/DSignToolName=chromastudio"
    $IsccArgs += "/Schromastudio=$SignCommand"
}
$IsccArgs += (Join-Path $PSScriptRoot "chroma-studio.iss")
Invoke-Checked $Iscc $IsccArgs

$Setup = Join-Path $Out "ChromaStudio-$($Manifest.app_version)-windows-x64-setup.exe"
Write-Host "Built $Setup"
